import {
  ActionRowBuilder,
  AttachmentBuilder,
  ButtonBuilder,
  ButtonStyle,
  EmbedBuilder,
  type MessageCreateOptions,
  type MessageEditOptions,
} from "discord.js";
import type { MessageButton, MessageModel } from "../../core/presenter.ts";
import { cut } from "../../core/presenter.ts";
import type { OutgoingFile } from "../../core/relay.ts";
import type { TallyLabels } from "../../core/vote-tally.ts";

/**
 * The neutral message model laid out as a Discord message: content line, one embed (title, fields, image,
 * footer, colour by tone), up to 5 rows of up to 5 buttons, and the files. Discord's own limits are applied
 * here (content 2000, embed title 256, description 4096, 25 fields, footer 2048); the presenter already cut
 * field values to 1024.
 */

/** A file to attach, already encoded. */
export type DiscordFile = Pick<OutgoingFile, "filename" | "bytes">;

/** The payload parts discord.js takes for a send, a reply or an edit. */
export type DiscordPayload = Required<
  Pick<MessageCreateOptions, "content" | "embeds" | "components" | "files">
>;

const COLOURS: Record<MessageModel["tone"], number> = { info: 0x5865f2, success: 0x57f287, error: 0xed4245 };
const STYLES: Record<MessageButton["style"], ButtonStyle> = {
  primary: ButtonStyle.Primary,
  secondary: ButtonStyle.Secondary,
  danger: ButtonStyle.Danger,
  success: ButtonStyle.Success,
};

/** Lays out `model`; `files[0]`, when given, is shown as the embed's image. */
export function layoutMessage(model: MessageModel, files: readonly DiscordFile[] = []): DiscordPayload {
  const embed = new EmbedBuilder().setTitle(cut(model.title, 256)).setColor(COLOURS[model.tone]);
  if (model.description) embed.setDescription(cut(model.description, 4096));
  if (model.fields.length > 0) {
    embed.addFields(
      model.fields
        .slice(0, 25)
        .map((f) => ({ name: cut(f.name, 256), value: cut(f.value, 1024), inline: f.inline })),
    );
  }
  if (model.footer) embed.setFooter({ text: cut(model.footer, 2048) });
  const shown = files[0];
  if (shown) embed.setImage(`attachment://${shown.filename}`);
  const components = model.buttons
    .filter((row) => row.length > 0)
    .slice(0, 5)
    .map((row) =>
      new ActionRowBuilder<ButtonBuilder>().addComponents(
        row
          .slice(0, 5)
          .map((b) =>
            new ButtonBuilder().setCustomId(b.id).setLabel(cut(b.label, 80)).setStyle(STYLES[b.style]),
          ),
      ),
    );
  return {
    content: cut(model.content, 2000),
    embeds: [embed],
    components,
    files: files.map((f) => new AttachmentBuilder(Buffer.from(f.bytes), { name: f.filename })),
  };
}

/** A posted message's button rows for an edit, each button `labels` names relabelled, the others as they are. */
export function relabelComponents(
  message: { components: readonly { toJSON(): unknown }[] },
  labels: TallyLabels,
): NonNullable<MessageEditOptions["components"]> {
  const rows = message.components.map((row) => row.toJSON() as { components?: { custom_id?: string }[] });
  return rows.map((row) => ({
    ...row,
    components: (row.components ?? []).map((c) => {
      const label = c.custom_id === undefined ? undefined : labels(c.custom_id);
      return label === undefined ? c : { ...c, label };
    }),
  })) as never;
}
