// docs.routes.ts imports these files as text (`with { type: 'text' }`) so that
// `bun build --compile` embeds them; TypeScript needs to be told they are strings.
declare module 'swagger-ui-dist/swagger-ui-bundle.js' {
  const text: string
  export default text
}
declare module 'swagger-ui-dist/swagger-ui.css' {
  const text: string
  export default text
}
