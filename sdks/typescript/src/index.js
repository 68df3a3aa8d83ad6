// Signoff for TypeScript and JavaScript: ask a person (through Signoff's policy) before an agent acts.
export { Signoff, DEFAULT_URL } from "./client.js";
export {
  requireApproval,
  askHuman,
  withRun,
  currentRunId,
  notApprovedMessage,
  answerText,
  approvalCallId,
  questionCallId,
} from "./approval.js";
export { verifyWebhook, signWebhook, WebhookVerificationError, WEBHOOK_TOLERANCE_SECONDS } from "./webhooks.js";
export * from "./errors.js";
