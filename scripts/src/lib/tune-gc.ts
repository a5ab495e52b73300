import { setFlagsFromString } from 'node:v8'

/**
 * For the scripts that stream gigabytes (an application may set V8 flags; a library may not).
 *
 * Every socket read allocates a 64 KiB buffer outside the JS heap. By default V8 frees those on
 * a background thread ("concurrent array-buffer sweeping"): on a small host that thread competes
 * with the transfer for the cores and every buffer is freed away from the thread that allocated
 * it. Freeing them during the young-generation GC on the main thread measured 12-20 % more
 * vm-export throughput on 2 cores (8 × 512 MiB, concurrency 2: 638-651 MiB/s against
 * 543-581 MiB/s, alternating runs), when every export still read its socket that way. Over `http:`
 * exports and relays now read in place and allocate nothing per read: this matters for `https:`
 * transfers and imports. The flag is read at each sweep: setting it at start-up, before any
 * transfer, is safe.
 */
export function tuneGcForStreaming(): void {
  setFlagsFromString('--no-concurrent-array-buffer-sweeping')
}
