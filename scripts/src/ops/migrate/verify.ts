import type { Expectation } from './journal.js'
import { isNull, toInt, type MVbd, type MVdi, type MVif, type MVm } from './records.js'
import { xapiCode, type MigrateXapi } from './xapi.js'

/** The copy does not match the source: the source must be kept. */
export class VerificationError extends Error {
  override name = 'VerificationError'
  readonly code = 'VERIFY_FAILED'
}

/**
 * Checks the copy on the destination: the VM exists, its disks have the source's sizes (by
 * userdevice) and sit on the planned SR, its VIFs are on the mapped networks (by device).
 * Resolves with the copy's uuid and power state; throws {@link VerificationError}.
 */
export async function verifyCopy(
  dest: MigrateXapi,
  vmRef: string,
  expect: Expectation,
  signal?: AbortSignal
): Promise<{ uuid: string; powerState: string }> {
  let vm: MVm
  try {
    vm = await dest.call<MVm>('VM.get_record', [vmRef], { signal })
  } catch (error) {
    if (xapiCode(error) === 'HANDLE_INVALID') {
      throw new VerificationError('the copy does not exist in the destination pool')
    }
    throw error
  }
  const problems: string[] = []
  const disks = new Map<string, { size: number; sr: string }>()
  for (const vbdRef of vm.VBDs) {
    const vbd = await dest.call<MVbd>('VBD.get_record', [vbdRef], { signal })
    if (vbd.type !== 'Disk' || isNull(vbd.VDI)) continue
    const vdi = await dest.call<MVdi>('VDI.get_record', [vbd.VDI], { signal })
    disks.set(vbd.userdevice, { size: toInt(vdi.virtual_size), sr: vdi.SR })
  }
  if (disks.size !== expect.disks.length) {
    problems.push(`${disks.size} disk(s) where the source has ${expect.disks.length}`)
  }
  for (const want of expect.disks) {
    const got = disks.get(want.userdevice)
    if (got === undefined) problems.push(`disk ${want.userdevice} is missing`)
    else {
      if (got.size !== want.virtualSize) {
        problems.push(
          `disk ${want.userdevice} has ${got.size} bytes, the source ${want.virtualSize}`
        )
      }
      if (want.sr !== '' && got.sr !== want.sr) {
        problems.push(`disk ${want.userdevice} is not on the planned SR`)
      }
    }
  }
  const vifs = await vifsByDevice(dest, vm, signal)
  for (const want of expect.vifs) {
    const got = vifs.get(want.device)
    if (got === undefined) problems.push(`VIF ${want.device} is missing`)
    else {
      if (got.record.network !== want.network) {
        problems.push(`VIF ${want.device} is not on network ${want.networkName}`)
      }
      if (want.mac && !sameMac(got.record.MAC, want.mac)) {
        problems.push(`VIF ${want.device} has MAC ${got.record.MAC}, the source ${want.mac}`)
      }
    }
  }
  if (problems.length > 0) {
    throw new VerificationError(`verification of the copy failed: ${problems.join('; ')}`)
  }
  return { uuid: vm.uuid, powerState: vm.power_state }
}

async function vifsByDevice(
  dest: MigrateXapi,
  vm: MVm,
  signal?: AbortSignal
): Promise<Map<string, { ref: string; record: MVif }>> {
  const vifs = new Map<string, { ref: string; record: MVif }>()
  for (const ref of vm.VIFs) {
    const record = await dest.call<MVif>('VIF.get_record', [ref], { signal })
    vifs.set(record.device, { ref, record })
  }
  return vifs
}

/**
 * Puts a stream copy's VIFs on the mapped networks with the source's MACs: the import (not a
 * restore) keeps each VIF's device but gives it a new MAC, and picks networks by name, else by
 * bridge, else makes one (import.ml `Net`). A VIF with the right MAC on the wrong network is
 * moved (`VIF.move`, XenServer 7.1+); otherwise it is destroyed and created again with the
 * source's device, MAC and MTU (a MAC cannot be changed). A network the import made is left
 * without VIFs: `removeImportedNetworks` removes it once the batch is over.
 */
export async function repointVifs(
  dest: MigrateXapi,
  vmRef: string,
  expect: Expectation,
  signal?: AbortSignal
): Promise<void> {
  const vm = await dest.call<MVm>('VM.get_record', [vmRef], { signal })
  const vifs = await vifsByDevice(dest, vm, signal)
  for (const want of expect.vifs) {
    const got = vifs.get(want.device)
    const macOk = !want.mac || (got !== undefined && sameMac(got.record.MAC, want.mac))
    if (got?.record.network === want.network && macOk) continue
    if (got !== undefined) {
      if (macOk) {
        try {
          await dest.call('VIF.move', [got.ref, want.network], { signal })
          continue
        } catch (error) {
          // Older servers lack VIF.move (MESSAGE_METHOD_UNKNOWN); others may refuse it: recreate.
          if (xapiCode(error) === undefined || signal?.aborted) throw error
        }
      }
      await dest.call('VIF.destroy', [got.ref], { signal })
    }
    await dest.call(
      'VIF.create',
      [
        {
          device: want.device,
          network: want.network,
          VM: vmRef,
          MAC: want.mac,
          MTU: String(want.mtu || 1500),
          other_config: {},
          qos_algorithm_type: '',
          qos_algorithm_params: {},
          locking_mode: 'network_default',
          ipv4_allowed: [],
          ipv6_allowed: [],
        },
      ],
      { signal }
    )
  }
}

function sameMac(a: string | undefined, b: string): boolean {
  return (a ?? '').toLowerCase() === b.toLowerCase()
}
