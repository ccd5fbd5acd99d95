"""The delivery engine: a stored call's way to Intercom (docs/architecture.md walks one call).

- loop: the task loop: a task's deliveries claimed together, tried in order, its users' next
  calls no task holds carried on, the rest handed on
- leases: the claim of deliveries under a lease (one SQL statement), their return, and each
  user's next due deliveries
- attempt: one try of a delivery: routed, mapped once, sent, and what its outcome sets off
- sequence: the Intercom requests of one call, per call type, as a Result
- exchanges: an attempt's requests, each recorded and paced by the limiter (the recording client)
- result: the Result and Stop values every part of the engine shares
- policy: what a failed answer means: retry when, wait, fail or hold; the next state
- outcomes: the one builder of an outcome's fields, and its immediate writer
- buffer: delivered outcomes of a task written together (the write-behind buffer)
- limiter: the rate limiter shared by every worker, following Intercom's headers
- queue: the task queue's plumbing: enqueue in batches, reopen (resend, release)
- sweeper: due retries, expired leases, lost tasks, expired waits; one sweep at a time
- watchdog: the cluster's heartbeat, and its restart when no task runs
- worker_starts: which worker starts may have lost a task (a recycled worker's replacement has not)
- attributes: custom data attributes: aliases, refusals, creation (docs/fidelity.md)
- workspace: which Intercom workspace the token writes to; caches are kept per workspace
- connection: the connection status the dashboard shows
"""
