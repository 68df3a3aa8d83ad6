// Signoff for TypeScript and JavaScript: ask a person (through Signoff's policy) before an agent acts.
export * from "./types.js";
export * from "./client.js";
export * from "./approval.js";
export * from "./errors.js";
export * from "./webhooks.js";
