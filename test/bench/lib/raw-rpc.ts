import http from 'node:http'

/** A bare JSON-RPC caller over a keep-alive agent: the thinnest possible client, to load the simulator. */
export function rawJsonRpc(baseUrl: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 })
  const url = new URL('/jsonrpc', baseUrl)
  let id = 0
  const call = (method: string, params: unknown[]) =>
    new Promise<{ body: string; result: unknown }>((resolve, reject) => {
      const payload = JSON.stringify({ jsonrpc: '2.0', method, params, id: ++id })
      const req = http.request(
        url,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
          },
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString()
            try {
              const parsed = JSON.parse(body) as { result?: unknown; error?: unknown }
              if (parsed.error) reject(new Error(JSON.stringify(parsed.error)))
              else resolve({ body, result: parsed.result })
            } catch (error) {
              reject(error as Error)
            }
          })
          res.on('error', reject)
        }
      )
      req.on('error', reject)
      req.end(payload)
    })
  return { call, close: () => agent.destroy() }
}
