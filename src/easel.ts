import { join } from "node:path";
import { LdmBackend } from "./backends/ldm/ldm-backend.ts";
import { chooseDefaultModel, listModelNames } from "./backends/ldm/model-folder.ts";
import { PromptTokenCounter } from "./backends/ldm/prompt-tokens.ts";
import { LdmWorkerPool } from "./backends/ldm/worker-pool.ts";
import {
  OPENAI_NATIVE_SIDE,
  OpenAiImageBackend,
  openAiBackendLimits,
} from "./backends/openai/openai-backend.ts";
import type { Config } from "./config.ts";
import type { ImageBackend } from "./core/backend.ts";
import { ContestClock } from "./core/ballots.ts";
import type { BotServices } from "./core/bot-services.ts";
import { Engine } from "./core/engine.ts";
import { EaselError } from "./core/errors.ts";
import { DEVICE_TEXT, STARTUP_TEXT } from "./core/messages.ts";
import { JobRelay } from "./core/relay.ts";
import type { BackendName } from "./core/request.ts";
import { Housekeeper } from "./core/retention.ts";
import { DEFAULT_REQUEST_DEFAULTS } from "./core/settings.ts";
import { spendReport } from "./core/spend-report.ts";
import { loggerFor } from "./logging/logger.ts";
import { DiscordBot } from "./platforms/discord/discord-bot.ts";
import { SlackBot } from "./platforms/slack/slack-bot.ts";
import { encodeAnimation } from "./render/animation.ts";
import { encodeJobImages } from "./render/encode-job.ts";
import { fitPng } from "./render/fit-png.ts";
import { encodePng } from "./render/png.ts";
import { prepareImage } from "./render/prepare-image.ts";
import { SqliteEngineStore } from "./store/engine-store.ts";
import { Store } from "./store/index.ts";
import { KeptPreviews } from "./store/kept-previews.ts";
import { storeHousekeeping } from "./store/retention.ts";
import { storeSettingsPort } from "./store/settings-port.ts";

/**
 * The composition root as a function: configuration → store → backends → engine → relay → platforms, and the
 * way back down on stop. `src/main.ts` calls it with the real configuration; end-to-end tests call it with
 * fake servers' URLs. Nothing here decides behaviour; it only wires the parts together.
 */

export interface EaselHandle {
  engine: Engine;
  store: Store;
  relay: JobRelay;
  contests: ContestClock;
  /** What commands and buttons use (tests drive them directly). */
  services: BotServices;
  discord?: DiscordBot;
  slack?: SlackBot;
  /** Stops taking work, lets running jobs finish for `graceMs`, posts what is done, closes everything. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  /**
   * Where every part's log lines go: src/main.ts passes its sink (src/logging), tests a collector. Left out,
   * a sink for `config` is made here (stderr, redacted).
   */
  log?: (line: string) => void;
  /** The SDKs' own debug output (discord.js, bolt); only given with EASEL_DEBUG=1. */
  debug?: (line: string) => void;
  /** Minimum milliseconds between two edits of a job's status message (default 2000). */
  minEditIntervalMs?: number;
  /** The package version, for /info. */
  version?: string;
}

/** The caller's sink (src/main.ts's, a test's collector), else one for `config`: every part logs into it. */
function sinkOf(
  config: Config,
  options: StartOptions,
): { log: (line: string) => void; debug?: (line: string) => void } {
  if (options.log) return { log: options.log, ...(options.debug ? { debug: options.debug } : {}) };
  const logger = loggerFor(config);
  return { log: logger.log, ...(logger.debugEnabled ? { debug: logger.debug } : {}) };
}

/** Starts every configured platform over one engine; throws a "config" EaselError when nothing can render. */
export async function startEasel(config: Config, options: StartOptions = {}): Promise<EaselHandle> {
  const { log, debug } = sinkOf(config, options);
  const store = Store.open(config.dataDir);
  const cleanup: (() => Promise<void> | void)[] = [() => store.close()];
  try {
    // Backends: the local models found in EASEL_MODELS_DIR, and OpenAI when a key is set.
    const backends: Partial<Record<BackendName, ImageBackend>> = {};
    const ldmModels = listModelNames(config.modelsDir);
    const ldmWorkers = new LdmWorkerPool(
      {
        modelsDir: config.modelsDir,
        device: config.device,
        deviceId: config.cudaDevice,
        ...(config.threads === undefined ? {} : { intraOpThreads: config.threads }),
        ...(config.safetyCheckerDir ? { lentSafetyChecker: config.safetyCheckerDir } : {}),
      },
      // The worker gets only the variables Node and onnxruntime read, never the tokens.
      { idleUnloadMs: config.idleUnloadMinutes * 60_000, log, env: config.workerEnv },
    );
    cleanup.push(() => ldmWorkers.stop());
    // The CLI's rule: EASEL_MODEL, else the only folder; several folders without EASEL_MODEL are refused.
    const defaultLdmModel =
      ldmModels.length > 0 || config.model ? chooseDefaultModel(config.modelsDir, config.model) : undefined;
    if (ldmModels.length > 0) backends.ldm = new LdmBackend((model) => ldmWorkers.worker(model));

    let openai: OpenAiImageBackend | undefined;
    if (config.openai.apiKey) {
      openai = new OpenAiImageBackend({
        settings: config.openai,
        ledger: store.spend,
        guildCaps: (requester) => settingsPort.guild(requester.platform, requester.workspaceId),
        log,
      });
      const check = await openai.verify();
      for (const warning of check.warnings) log(STARTUP_TEXT.warning(warning));
      backends.openai = openai;
    }
    if (!backends.ldm && !backends.openai) {
      throw new EaselError("config", STARTUP_TEXT.nothingToRender(config.modelsDir));
    }

    const settingsPort = storeSettingsPort(store, {
      limits: config.limits,
      openaiCaps: { perUser: config.openai.dailyImagesPerUser, perGuild: config.openai.dailyImagesPerGuild },
    });
    const engineStore = new SqliteEngineStore(store);
    const engine = new Engine({
      store: engineStore,
      backends,
      encoder: encodeJobImages,
      loadImage: async (id, as) => prepareImage(await store.images.readImage(id), id, as),
      limits: {
        ...config.queue,
        ...(config.limits.maxQueuedPerUser === undefined
          ? {}
          : { maxQueuedPerUser: config.limits.maxQueuedPerUser }),
      },
      ...(openai ? { backendLimits: { openai: openAiBackendLimits(config.openai) } } : {}),
      costWeight: (request) => (request.backend === "ldm" ? ldmWorkers.costWeight(request.model) : 1),
    });

    const previewsDir = join(config.dataDir, "previews");
    // Temp files and expired reply tokens at start and hourly; old jobs too when EASEL_RETENTION_DAYS is set.
    const housekeeper = new Housekeeper(storeHousekeeping(store, previewsDir), {
      ...(config.retentionDays === undefined ? {} : { retentionDays: config.retentionDays }),
      log,
    });
    cleanup.push(() => housekeeper.stop());
    const previews = new KeptPreviews(previewsDir, encodeAnimation);
    const promptTokens = new PromptTokenCounter(config.modelsDir);
    const services: BotServices = {
      engine,
      settings: settingsPort,
      jobs: {
        get: (jobId) => store.jobs.getJob(jobId),
        images: (jobId) => engineStore.loadImages(jobId),
        withheld: (jobId) => store.images.flaggedVariants(jobId),
        imageBytes: async (imageId) => store.images.readImage(imageId),
      },
      deliveries: store.deliveries,
      requestContext: {
        catalog: {
          ...(ldmModels.length > 0 ? { ldm: ldmModels } : {}),
          ...(openai ? { openai: [openai.model] } : {}),
        },
        limits: config.limits,
        defaults: {
          ...DEFAULT_REQUEST_DEFAULTS,
          backend: backends.ldm ? "ldm" : "openai",
          models: {
            ...(defaultLdmModel ? { ldm: defaultLdmModel } : {}),
            ...(openai ? { openai: openai.model } : {}),
          },
        },
        // A model's own defaults (SD-Turbo: 1 step, no CFG) are known once its worker has loaded it.
        modelDefaults: (backend, model) => (backend === "ldm" ? ldmWorkers.modelDefaults(model) : undefined),
        nativeSide: (backend, model) =>
          backend === "openai" ? OPENAI_NATIVE_SIDE : ldmWorkers.nativeSide(model),
      },
      imaging: {
        png: async (image) => encodePng({ width: image.width, height: image.height, data: image.data }),
        fit: fitPng,
        animation: (jobId) => previews.animation(jobId),
      },
      strengths: config.strengths,
      votes: store.votes,
      elo: config.elo,
      adminIds: config.adminIds,
      ...(openai
        ? {
            quota: (request, guild) =>
              request.backend === "openai" ? openai.checkQuota(request, guild) : undefined,
          }
        : {}),
      tokenCount: async (job) => promptTokens.count(job),
      info: () => ({
        version: options.version ?? "dev",
        device: backends.ldm ? ldmWorkers.deviceInUse() : DEVICE_TEXT.openAiOnly,
        models: {
          ...(ldmModels.length > 0 ? { ldm: ldmModels } : {}),
          ...(openai ? { openai: [openai.model] } : {}),
        },
      }),
      ...(openai ? { spendReport: (where) => spendReport(store.spend, where) } : {}),
    };

    const contests = new ContestClock(services, { elo: config.elo, log });
    const relay = new JobRelay(engine, services.jobs, {
      previews,
      log,
      afterResult: (job) => contests.resultPosted(job),
      afterEnded: (job) => void contests.sideEnded(job),
      ...(options.minEditIntervalMs === undefined ? {} : { minEditIntervalMs: options.minEditIntervalMs }),
    });
    relay.attach();
    cleanup.push(() => relay.detach());

    // The default model must load before easel says it is ready: a folder that does not load is never the
    // default (its defaults, such as SD-Turbo's 1 step, and the device in use also become known here).
    if (defaultLdmModel) {
      try {
        await ldmWorkers.worker(defaultLdmModel).start();
      } catch (err) {
        throw new EaselError(
          "config",
          STARTUP_TEXT.defaultModelBroken(
            defaultLdmModel,
            join(config.modelsDir, defaultLdmModel),
            err instanceof Error ? err.message : String(err),
          ),
          { cause: err },
        );
      }
    }

    let discord: DiscordBot | undefined;
    if (config.discord.token) {
      discord = new DiscordBot(services, relay, contests, {
        token: config.discord.token,
        ...(config.discord.guildId ? { guildId: config.discord.guildId } : {}),
        ...(config.discord.apiBase ? { apiBase: config.discord.apiBase } : {}),
        log,
        ...(debug ? { debug } : {}),
      });
      const bot = discord;
      cleanup.push(() => bot.stop());
    }

    let slack: SlackBot | undefined;
    if (config.slack.botToken && (config.slack.appToken || config.slack.signingSecret)) {
      slack = new SlackBot(services, relay, contests, {
        botToken: config.slack.botToken,
        ...(config.slack.appToken ? { appToken: config.slack.appToken } : {}),
        ...(config.slack.signingSecret ? { signingSecret: config.slack.signingSecret } : {}),
        ...(config.slack.apiUrl ? { apiUrl: config.slack.apiUrl } : {}),
        port: config.slack.port,
        log,
        ...(debug ? { debug } : {}),
      });
      const bot = slack;
      cleanup.push(() => bot.stop());
    }

    // Recovery before any platform takes an event: a member never meets "easel is restarting", and every
    // recovered job counts toward the limits from the first command on. Their messages wait for the platform.
    if (discord) relay.hold("discord");
    if (slack) relay.hold("slack");
    await engine.start();
    // A platform that fails to start must not leave recovered jobs rendering into a closed store.
    cleanup.push(() => engine.stop(0));
    if (discord) {
      await discord.start();
      relay.open("discord");
    }
    if (slack) {
      await slack.start();
      relay.open("slack");
    }
    contests.start();
    housekeeper.start();

    let stopped = false;
    return {
      engine,
      store,
      relay,
      contests,
      services,
      ...(discord ? { discord } : {}),
      ...(slack ? { slack } : {}),
      async stop(graceMs = 30_000) {
        if (stopped) return;
        stopped = true;
        await engine.stop(graceMs);
        await contests.stop();
        await relay.detach();
        for (const step of cleanup.reverse()) await step();
      },
    };
  } catch (err) {
    for (const step of cleanup.reverse()) await Promise.resolve(step()).catch(() => undefined);
    throw err;
  }
}
