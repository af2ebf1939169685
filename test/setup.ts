import { setDefaultTimeout } from 'bun:test'

// Integration tests start real servers and wait on real processes; a few
// seconds is not a hang on a shared 2-core machine.
setDefaultTimeout(30_000)
