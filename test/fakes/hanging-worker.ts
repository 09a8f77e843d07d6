/**
 * A stand-in LDM worker that loads instantly and then never answers a generate call: what a worker stuck in
 * a GPU driver call looks like to the supervisor.
 */
process.on("message", (message: { type: string }) => {
  if (message.type === "load") {
    process.send?.({
      type: "loaded",
      info: { name: "hang", provider: "cpu", io: {}, defaults: {}, hasVaeEncoder: false, loadMs: 0 },
    });
  }
  // "generate" and "cancel" are ignored on purpose.
});
setInterval(() => {}, 1000);
