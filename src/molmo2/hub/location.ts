// Where a checkpoint lives on the Hugging Face Hub, in the Hub's public "resolve" URL layout
// (`<endpoint>/<owner>/<name>/resolve/<revision>/<file>`), and what its HTTP answers mean to a user.
// Platform-free: the Node converter and the browser's Hub conversion share it.

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;

export function isRepoId(text: string): boolean {
  return REPO_ID.test(text) && !text.includes('..');
}

export interface HubRepo {
  /** e.g. https://huggingface.co (no trailing slash). */
  endpoint: string;
  /** owner/name */
  repo: string;
  /** Branch, tag or commit. */
  revision: string;
  /** Sent as a Bearer token (gated or private repositories). */
  token?: string;
}

export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): string {
  return `${endpoint.replace(/\/+$/, '')}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

export const fileUrl = (r: HubRepo, file: string) => resolveUrl(r.endpoint, r.repo, r.revision, file);

export class HubError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    /** Retrying cannot help (e.g. the host name does not resolve, access is refused). */
    readonly fatal = false,
  ) {
    super(message);
  }
}

/** True for answers that a retry may fix (server errors, timeouts, rate limits). */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** The plain message for a refusal: a wrong id or revision, or a gated/private repository. */
export function hubRefusal(r: HubRepo, file: string, status: number): HubError {
  if (status === 401 || status === 403) {
    const why = r.token
      ? 'the access token given has no access to it; accept the model’s terms on its Hub page, or use a token of an account that has'
      : 'either no such repository exists, or it is gated or private (then accept its terms on its Hub page and give an access token)';
    return new HubError(`${r.endpoint} refused ${r.repo} (HTTP ${status}): ${why}.`, status, true);
  }
  if (status === 404) {
    return new HubError(`${r.repo}@${r.revision} has no ${file} on ${r.endpoint} (HTTP 404): check the repository id and revision.`, 404, true);
  }
  return new HubError(`${file}: ${r.endpoint} answered HTTP ${status}.`, status, !isRetryableStatus(status));
}
