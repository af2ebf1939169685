/** A setting that cannot work: the role says which in one line and exits 2, never retrying. */
export class ConfigError extends Error {}
