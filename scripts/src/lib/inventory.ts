import { readFile } from 'node:fs/promises'

/** The dom0 inventory, holding `INSTALLATION_UUID` (the uuid of the host it runs on). */
export const INVENTORY_FILE = '/etc/xensource-inventory'

/** Environment variable overriding {@link INVENTORY_FILE} (tests, unusual installs). */
export const INVENTORY_ENV = 'XAPI_OPS_INVENTORY'

/** `KEY='value'` lines of `/etc/xensource-inventory` as a map. */
export function parseInventory(text: string): Record<string, string> {
  const entries: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(?:'([^']*)'|"([^"]*)"|(\S*))\s*$/.exec(line)
    if (match) entries[match[1]!] = match[2] ?? match[3] ?? match[4] ?? ''
  }
  return entries
}

/**
 * The uuid of the local host from the dom0 inventory (`INSTALLATION_UUID`), or undefined when
 * the file cannot be read or lacks it.
 */
export async function readInstallationUuid(
  env: Readonly<Record<string, string | undefined>>
): Promise<string | undefined> {
  try {
    const text = await readFile(env[INVENTORY_ENV] ?? INVENTORY_FILE, 'utf8')
    return parseInventory(text).INSTALLATION_UUID || undefined
  } catch {
    return undefined
  }
}
