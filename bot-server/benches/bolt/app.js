'use strict';
// Bolt for JavaScript comparison server for bot-server/benches/slack_load.rs.
//
// Protocol: run as `node app.js` with SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN and
// SLACK_API_URL (Web API base with a trailing slash) set. Listens on 127.0.0.1 with
// an OS-assigned port, prints `LISTEN 127.0.0.1:<port>` as its only stdout line,
// and exits when stdin closes or on SIGTERM. Logs go to stderr.

const { App, LogLevel } = require('@slack/bolt');

function required(name) {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`bolt bench: ${name} is not set\n`);
    process.exit(2);
  }
  return value;
}

// Bolt's ConsoleLogger sends info/debug to stdout; this one keeps stdout for the
// LISTEN line alone. Same interface, same level gating.
const SEVERITY = {
  [LogLevel.DEBUG]: 100,
  [LogLevel.INFO]: 200,
  [LogLevel.WARN]: 300,
  [LogLevel.ERROR]: 400,
};
const stderrLogger = {
  level: LogLevel.ERROR,
  name: 'bolt-app',
  getLevel() {
    return this.level;
  },
  setLevel(level) {
    this.level = level;
  },
  setName(name) {
    this.name = name;
  },
  log(level, msg) {
    if (SEVERITY[level] >= SEVERITY[this.level]) {
      console.error(`[${level.toUpperCase()}] ${this.name}`, ...msg);
    }
  },
  debug(...msg) {
    this.log(LogLevel.DEBUG, msg);
  },
  info(...msg) {
    this.log(LogLevel.INFO, msg);
  },
  warn(...msg) {
    this.log(LogLevel.WARN, msg);
  },
  error(...msg) {
    this.log(LogLevel.ERROR, msg);
  },
};

const app = new App({
  signingSecret: required('SLACK_SIGNING_SECRET'),
  token: required('SLACK_BOT_TOKEN'),
  // Bot identity given up front, so Bolt never calls auth.test: neither at start-up
  // (tokenVerificationEnabled) nor lazily on the first event (it does that when
  // botId/botUserId are unknown). Slack's only endpoint contacted is chat.postMessage.
  tokenVerificationEnabled: false,
  botUserId: process.env.SLACK_BOT_USER_ID || 'UBOT',
  botId: process.env.SLACK_BOT_ID || 'BBOT',
  clientOptions: { slackApiUrl: required('SLACK_API_URL') },
  logger: stderrLogger,
  logLevel: LogLevel.ERROR,
  // Everything else is Bolt's default: HTTPReceiver on /slack/events, signature
  // verification on, events acknowledged before the listener runs.
});

// A human's direct message: answer it once. Bot posts (our own replies echoed
// back, other apps) and subtyped messages (edits, joins, ...) are ignored.
app.message(async ({ message, say }) => {
  if (message.subtype !== undefined || message.bot_id !== undefined) return;
  if (message.channel_type !== 'im') return;
  await say('Hi! Try `status`.');
});

app.error(async (error) => {
  stderrLogger.error(error);
});

let stopping = false;
async function shutdown(server) {
  if (stopping) return;
  stopping = true;
  try {
    // Stop accepting, then drop idle keep-alive connections so close() can finish.
    const closed = app.stop();
    server.closeAllConnections();
    await closed;
  } catch (e) {
    stderrLogger.error('stop failed', e);
  }
  process.exit(0);
}

(async () => {
  const server = await app.start({ port: 0, host: '127.0.0.1' });
  const { address, port } = server.address();
  process.stdout.write(`LISTEN ${address}:${port}\n`);

  process.stdin.on('end', () => shutdown(server));
  process.stdin.on('error', () => shutdown(server));
  process.stdin.resume();
  process.on('SIGTERM', () => shutdown(server));
  process.on('SIGINT', () => shutdown(server));
})().catch((e) => {
  stderrLogger.error('start failed', e);
  process.exit(1);
});
