/**
 * Links to a posted message, for leaderboards: Discord's channel URL scheme, and Slack's archive permalink
 * (the "p" and the timestamp without its dot), which opens the message in the member's workspace.
 */
export function messageLink(
  platform: string,
  workspaceId: string,
  channelId: string,
  messageId: string,
): string {
  if (platform === "slack") return `https://slack.com/archives/${channelId}/p${messageId.replace(".", "")}`;
  return `https://discord.com/channels/${workspaceId}/${channelId}/${messageId}`;
}
