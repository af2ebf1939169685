/** `taskline/client`: the typed client (src/client), at the package root beside index.ts. */
export * from './src/client/index'
