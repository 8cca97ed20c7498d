import { createHmac } from 'node:crypto'
import { describeEvent, EVENT_NAMES, type EventName, type UpkeepEvent } from './events'
import { UpdateError } from '../../../updater/shared/errors'

/**
 * One webhook mechanism, several shapes: `json` is Upkeep's own documented body; the others are
 * what common self-hosted push and chat services take, built from the same event.
 */
export const PRESETS = ['json', 'ntfy', 'gotify', 'discord', 'slack'] as const
export type PresetName = (typeof PRESETS)[number]

export interface WebhookEndpoint {
  /** json, discord, slack: the webhook URL; ntfy: the topic URL; gotify: the server's base URL. */
  url: string
  /** The events sent here; absent means all. */
  events?: EventName[]
  preset: PresetName
  /** Signs each request (`X-Upkeep-Signature`). */
  secret?: string
  /** ntfy: an access token (Bearer); gotify: the application token. */
  token?: string
}

export interface WebhookRequest {
  url: string
  method: 'POST'
  headers: Record<string, string>
  body: string
}

const SIGNATURE_HEADER = 'X-Upkeep-Signature'
const TIMESTAMP_HEADER = 'X-Upkeep-Timestamp'

/** `sha256=<hex>`: HMAC-SHA256 over `<timestamp>.<raw body>` with the endpoint's secret. */
export function signature(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

/** The HTTP request that delivers `event` to `ep`; `timestamp` (Unix seconds) is part of the signature. */
export function renderRequest(ep: WebhookEndpoint, event: UpkeepEvent, timestamp: number, userAgent = 'Upkeep'): WebhookRequest {
  const { title, message, important } = describeEvent(event)
  const common: Record<string, string> = { 'User-Agent': userAgent, 'X-Upkeep-Event': event.event, 'X-Upkeep-Delivery': event.id }
  let req: WebhookRequest
  switch (ep.preset) {
    case 'json':
      req = { url: ep.url, method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(event) }
      break
    case 'ntfy':
      // https://docs.ntfy.sh/publish/: the body is the message, the rest goes in headers.
      req = {
        url: ep.url,
        method: 'POST',
        headers: {
          'Content-Type': 'text/plain; charset=utf-8',
          Title: headerText(title),
          Priority: important ? '4' : '3',
          Tags: NTFY_TAGS[event.event],
          ...(event.url ? { Click: event.url } : {}),
          ...(ep.token ? { Authorization: `Bearer ${ep.token}` } : {}),
        },
        body: message,
      }
      break
    case 'gotify':
      // https://gotify.net/api-docs: POST /message with the application token.
      req = {
        url: ep.url.replace(/\/+$/, '').replace(/(\/message)?$/, '/message'),
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(ep.token ? { 'X-Gotify-Key': ep.token } : {}) },
        body: JSON.stringify({
          title,
          message,
          priority: important ? 8 : 4,
          ...(event.url ? { extras: { 'client::notification': { click: { url: event.url } } } } : {}),
        }),
      }
      break
    case 'discord':
      // No pings: an app name or an error message must never mention @everyone.
      req = {
        url: ep.url,
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: 'Upkeep', content: truncate(`**${title}**\n${message}${event.url ? `\n${event.url}` : ''}`, 2000), allowed_mentions: { parse: [] } }),
      }
      break
    case 'slack':
      // Slack, Mattermost and Rocket.Chat incoming webhooks all read {text} with Slack's escaping.
      req = {
        url: ep.url,
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ text: `*${slackEscape(title)}*\n${slackEscape(message)}${event.url ? `\n<${event.url}|Open in Upkeep>` : ''}` }),
      }
      break
  }
  req.headers = { ...req.headers, ...common }
  if (ep.secret) req.headers = { ...req.headers, [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: signature(ep.secret, timestamp, req.body) }
  return req
}

const NTFY_TAGS: Record<EventName, string> = {
  'update-available': 'package',
  'update-started': 'arrows_counterclockwise',
  'update-completed': 'white_check_mark',
  'update-failed': 'x',
  'update-rolled-back': 'rewind',
  'auto-paused': 'pause_button',
  test: 'test_tube',
}

/** HTTP header values are Latin-1: anything else goes as RFC 2047 UTF-8, which ntfy decodes. */
function headerText(s: string): string {
  return /^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`
}

function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** Checks an endpoint from settings or an app definition; throws a hinted `BAD_REQUEST`. */
export function verifyEndpoint(input: unknown): WebhookEndpoint {
  const bad = (message: string, hint = 'an endpoint is {"url": "https://…", "preset": "json", "events": ["update-failed"], "secret": "…"}') => new UpdateError('BAD_REQUEST', message, { hint })
  if (typeof input !== 'object' || input === null) throw bad('a webhook endpoint must be a JSON object')
  const o = input as Record<string, unknown>
  const unknown = Object.keys(o).filter((k) => !['url', 'events', 'preset', 'secret', 'token'].includes(k))
  if (unknown.length) throw bad(`unknown webhook field ${unknown.map((k) => JSON.stringify(k)).join(', ')}`)
  let url: URL
  try {
    url = new URL(String(o.url))
  } catch {
    throw bad(`webhook url ${JSON.stringify(o.url)} is not a URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad('a webhook url starts with https:// or http://')
  const preset = (o.preset ?? 'json') as PresetName
  if (!PRESETS.includes(preset)) throw bad(`preset must be one of ${PRESETS.join(', ')}`)
  if (o.events !== undefined && (!Array.isArray(o.events) || o.events.some((e) => !EVENT_NAMES.includes(e as EventName)))) throw bad(`events must be a list of ${EVENT_NAMES.join(', ')}`)
  for (const k of ['secret', 'token'] as const) if (o[k] !== undefined && (typeof o[k] !== 'string' || o[k] === '')) throw bad(`${k} must be a non-empty string`)
  if (preset === 'gotify' && !o.token) throw bad('a gotify endpoint needs the application token', 'create an application in Gotify and put its token in "token"')
  return {
    url: url.toString(),
    preset,
    ...(o.events ? { events: o.events as EventName[] } : {}),
    ...(o.secret ? { secret: o.secret as string } : {}),
    ...(o.token ? { token: o.token as string } : {}),
  }
}
