/**
 * The wire listeners' settings saved in the app (port, on or off, the AMQP
 * listener's certificate), and which configuration each listener starts with:
 * what the command line or environment gave for this run, else the saved
 * setting, else the default of the way the app was started (desktop, serve).
 */
import { readFileSync } from 'node:fs';
import { ApiError } from '../contract/errors.js';
import type { ListenerSetting } from '../contract/types.js';
import type { Logger } from '../ground/logger.js';
import type { AppStore } from './app-store.js';
import { DEFAULT_PORTS, type ListenerConfig, type ListenerProtocol, type ListenersOptions } from './listeners.js';

const key = (protocol: ListenerProtocol) => `listener:${protocol}`;

export function savedListenerSetting(store: AppStore, protocol: ListenerProtocol): ListenerSetting | null {
  const raw = store.getSetting(key(protocol));
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as Partial<ListenerSetting>;
    if (typeof v.enabled !== 'boolean' || !Number.isInteger(v.port) || v.port! < 0 || v.port! > 65_535) return null;
    return {
      enabled: v.enabled,
      port: v.port!,
      ...(typeof v.tlsCertFile === 'string' && typeof v.tlsKeyFile === 'string' ? { tlsCertFile: v.tlsCertFile, tlsKeyFile: v.tlsKeyFile } : {}),
    };
  } catch {
    return null;
  }
}

export function saveListenerSetting(store: AppStore, protocol: ListenerProtocol, setting: ListenerSetting): void {
  store.setSetting(key(protocol), JSON.stringify(setting));
}

/** The listener configuration of a setting; the certificate files are read here (INVALID_ARGUMENT naming the file's field when one cannot be). */
export function configOfSetting(setting: ListenerSetting, dataDir: string | null): ListenerConfig | false {
  if (!setting.enabled) return false;
  const config: ListenerConfig = { port: setting.port, dataDir };
  if (setting.tlsCertFile && setting.tlsKeyFile) {
    config.tls = { cert: readPem(setting.tlsCertFile, 'tlsCertFile'), key: readPem(setting.tlsKeyFile, 'tlsKeyFile') };
  }
  return config;
}

function readPem(file: string, field: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (error) {
    throw new ApiError('INVALID_ARGUMENT', `${field}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, field);
  }
  if (!pem.includes('-----BEGIN ')) throw new ApiError('INVALID_ARGUMENT', `${field}: ${file} is not a PEM file`, field);
  return pem;
}

/**
 * What each listener starts with: `given` (command line, environment) wins, then
 * the saved setting, then `defaults`. A saved setting that cannot be used (a
 * certificate file gone) is logged and the default taken instead, so the app starts.
 */
export function resolveListeners(given: ListenersOptions | undefined, defaults: ListenersOptions | undefined, store: AppStore, dataDir: string | null, logger: Logger): ListenersOptions {
  const out: ListenersOptions = {};
  for (const protocol of Object.keys(DEFAULT_PORTS) as ListenerProtocol[]) {
    const explicit = given?.[protocol];
    if (explicit !== undefined) {
      out[protocol] = explicit;
      continue;
    }
    const saved = savedListenerSetting(store, protocol);
    if (saved && defaults?.[protocol] !== undefined) {
      try {
        out[protocol] = configOfSetting(saved, dataDir);
        continue;
      } catch (error) {
        logger.error(`the saved ${protocol} listener setting cannot be used; starting with the default`, { error: (error as Error).message });
      }
    }
    if (defaults?.[protocol] !== undefined) out[protocol] = defaults[protocol];
  }
  return out;
}
