// Sends identify, track, group and page with @segment/analytics-node, unmodified, to the relay.
// Usage: node send.js HOST WRITE_KEY   (HOST like http://127.0.0.1:PORT)
// Exits non-zero when a call was not delivered, so the Python test sees it.
const { Analytics } = require('@segment/analytics-node')

const [host, writeKey] = process.argv.slice(2)
if (!host || !writeKey) {
  console.error('usage: node send.js HOST WRITE_KEY')
  process.exit(2)
}

// flushAt 4: the four calls go out as one batch. maxRetries 1: a broken relay fails fast.
const analytics = new Analytics({ writeKey, host, flushAt: 4, maxRetries: 1, httpRequestTimeout: 10000 })
let failed = false
analytics.on('error', (err) => {
  failed = true
  console.error('delivery error:', err.code, err.reason ? String(err.reason) : '')
})

analytics.identify({
  userId: 'node-user',
  traits: { email: 'node@example.com', name: 'Node User' },
  messageId: 'node-identify-1',
})
analytics.track({
  userId: 'node-user',
  event: 'Order Completed',
  properties: { revenue: 42.5, currency: 'EUR' },
  timestamp: new Date('2024-01-02T03:04:05.000Z'),
  messageId: 'node-track-1',
})
analytics.group({ userId: 'node-user', groupId: 'org-node', traits: { name: 'Initech' }, messageId: 'node-group-1' })
analytics.page({
  anonymousId: 'node-anon',
  category: 'Docs',
  name: 'Getting Started',
  properties: { url: 'https://example.com/docs' },
  messageId: 'node-page-1',
})

analytics
  .closeAndFlush({ timeout: 20000 })
  .then(() => {
    console.log(failed ? 'failed' : 'flushed')
    process.exit(failed ? 1 : 0)
  })
  .catch((err) => {
    console.error(err)
    process.exit(1)
  })
