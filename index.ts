/**
 * `taskline`: what a handler module imports. It sits at the package root
 * because a compiled taskline binary resolves a handler file's
 * `import … from 'taskline'` only to an entry point there.
 */
export {
  defineHandler,
  PermanentError,
  RetryableError,
  sleep,
  type HandlerContext,
  type HandlerLogger,
  type HandlerModule,
  type TaskHandler,
  type TaskType,
} from './src/handlers/handler'
