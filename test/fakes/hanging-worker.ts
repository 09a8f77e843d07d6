/**
 * A stand-in LDM worker that loads instantly and then never answers a generate call: what a worker stuck in
 * a GPU driver call looks like to the supervisor. It says what it received as log lines (which the supervisor
 * passes to its `log` without counting them as signs of life), so that tests can act once a job has reached it.
 */
process.on("message", (message: { type: string }) => {
  if (message.type === "load") {
    process.send?.({
      type: "loaded",
      info: { name: "hang", provider: "cpu", io: {}, defaults: {}, hasVaeEncoder: false, loadMs: 0 },
    });
    return;
  }
  // "generate" and "cancel" are otherwise ignored on purpose.
  process.send?.({ type: "log", line: `hanging worker got ${message.type}` });
});
setInterval(() => {}, 1000);
