// The one way the app talks to pms: the public REST API through the gateway, with the
// session's access token. Tokens live only in this module's memory (never in storage or
// cookies): a reload signs the user out (docs/adr/0004-web-app.md).

export type Role =
  | "admin"
  | "clinician"
  | "receptionist"
  | "billing"
  | "analyst"
  | string;

export interface User {
  id: string;
  email: string;
  name: string;
  roles: Role[];
}

/** An RFC 9457 problem, with its field errors by JSON pointer ("/givenName"). */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly fields: Record<string, string>,
    readonly body: unknown = null,
  ) {
    super(detail || title);
  }

  /** What to tell the user, in one sentence. */
  get message(): string {
    return this.detail || this.title;
  }
}

export interface Answer<T> {
  status: number;
  data: T;
  etag: string | null;
}

interface Tokens {
  access: string;
  refresh: string;
}

let tokens: Tokens | null = null;
let refreshTimer: number | undefined;
let refreshing: Promise<boolean> | null = null;
const expiryListeners = new Set<() => void>();
const sessionListeners = new Set<(user: User | null) => void>();
let currentUser: User | null = null;

/** Called when the session ends by itself (refresh refused): the app asks to sign in again. */
export function onExpired(listener: () => void): () => void {
  expiryListeners.add(listener);
  return () => expiryListeners.delete(listener);
}

export function onSession(listener: (user: User | null) => void): () => void {
  sessionListeners.add(listener);
  return () => sessionListeners.delete(listener);
}

export function user(): User | null {
  return currentUser;
}

export function hasRole(...roles: Role[]): boolean {
  return !!currentUser && currentUser.roles.some((r) => r === "admin" || roles.includes(r));
}

/** The claims of an access token (read, not verified: the gateway verifies). */
function claims(token: string): Record<string, unknown> {
  const part = token.split(".")[1] ?? "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function adopt(pair: { accessToken: string; refreshToken: string; expiresIn: number }, email?: string) {
  tokens = {
    access: pair.accessToken,
    refresh: pair.refreshToken,
  };
  const c = claims(pair.accessToken);
  const before = currentUser;
  currentUser = {
    id: String(c.sub ?? ""),
    email: email ?? before?.email ?? String(c.email ?? ""),
    name: String(c.name ?? email ?? before?.name ?? ""),
    roles: Array.isArray(c.roles) ? (c.roles as string[]) : [],
  };
  resume();
  window.clearTimeout(refreshTimer);
  // Rotate a minute before the access token expires (or halfway, for short ones).
  const lead = Math.min(60_000, (pair.expiresIn * 1000) / 2);
  refreshTimer = window.setTimeout(() => void refresh(), pair.expiresIn * 1000 - lead);
}

function forget() {
  tokens = null;
  names.clear();
  window.clearTimeout(refreshTimer);
}

export async function signIn(email: string, password: string): Promise<void> {
  const answer = await send<{ accessToken: string; refreshToken: string; expiresIn: number }>(
    "POST",
    "/auth/login",
    { email, password },
    { anonymous: true },
  );
  adopt(answer.data, email);
  // A sign-in (also the one after a session ended) is announced; a refresh is not.
  sessionListeners.forEach((l) => l(currentUser));
}

export async function signOut(): Promise<void> {
  const refreshToken = tokens?.refresh;
  forget();
  currentUser = null;
  sessionListeners.forEach((l) => l(null));
  if (refreshToken) {
    await send("POST", "/auth/logout", { refreshToken }, { anonymous: true }).catch(() => undefined);
  }
}

/** Exchanges the refresh token for a new pair (once at a time). False: the session is over. */
function refresh(): Promise<boolean> {
  if (!tokens) return Promise.resolve(false);
  if (!refreshing) {
    const refreshToken = tokens.refresh;
    refreshing = send<{ accessToken: string; refreshToken: string; expiresIn: number }>(
      "POST",
      "/auth/refresh",
      { refreshToken },
      { anonymous: true },
    )
      .then((answer) => {
        adopt(answer.data);
        return true;
      })
      .catch((err: Problem) => {
        // pms unreachable or busy: keep the session and try again shortly.
        if (err.status === 0 || err.status >= 500 || err.status === 429) {
          window.clearTimeout(refreshTimer);
          refreshTimer = window.setTimeout(() => void refresh(), 5_000);
          return false;
        }
        // Refused (revoked, expired, account disabled): the session is over.
        forget();
        expiryListeners.forEach((l) => l());
        return false;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

interface Options {
  ifMatch?: string | null;
  anonymous?: boolean;
}

/** Waits until the user has signed in again after the session expired. */
let resumed: { promise: Promise<void>; resolve: () => void } | null = null;
function waitForSignIn(): Promise<void> {
  if (!resumed) {
    let resolve = () => {};
    const promise = new Promise<void>((r) => (resolve = r));
    resumed = { promise, resolve };
  }
  return resumed.promise;
}
/** Sends the calls that waited for a session: one exists again. */
function resume() {
  resumed?.resolve();
  resumed = null;
}

/**
 * One API call. Resolves with the status, the JSON body and the ETag on 2xx; rejects with a
 * Problem otherwise. A 401 refreshes the session once; when that fails, the call waits until
 * the user signs in again and is sent again, so nothing typed is lost.
 */
export async function send<T = unknown>(
  method: string,
  path: string,
  body?: unknown,
  options: Options = {},
): Promise<Answer<T>> {
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (options.ifMatch) headers["if-match"] = options.ifMatch;
    if (!options.anonymous) {
      if (!tokens) await waitForSignIn();
      if (tokens) headers.authorization = `Bearer ${tokens.access}`;
    }
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      throw new Problem(0, "pms cannot be reached", "Check the network connection and try again.", {});
    }
    if (response.status === 401 && !options.anonymous && attempt < 2) {
      if (!(await refresh())) await waitForSignIn();
      continue;
    }
    const text = await response.text();
    const data = text ? safeJson(text) : null;
    if (!response.ok) throw toProblem(response.status, data);
    return { status: response.status, data: data as T, etag: response.headers.get("etag") };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function toProblem(status: number, data: unknown): Problem {
  const p = (data && typeof data === "object" ? data : {}) as {
    title?: string;
    detail?: string;
    errors?: { pointer?: string; parameter?: string; detail: string }[];
  };
  const fields: Record<string, string> = {};
  for (const e of p.errors ?? []) {
    const key = e.pointer ?? (e.parameter ? `?${e.parameter}` : "");
    fields[key] = fields[key] ? `${fields[key]}; ${e.detail}` : e.detail;
  }
  const fallback: Record<number, string> = {
    403: "Your roles do not allow this. Ask an administrator if you need it.",
    404: "Not found.",
    429: "Too many requests: wait a moment and try again.",
    503: "pms is busy or a part of it is unavailable: try again in a moment.",
    504: "pms did not answer in time: try again.",
  };
  return new Problem(status, p.title ?? `Error ${status}`, p.detail ?? fallback[status] ?? "", fields, data);
}

/** Shorthands. */
export const get = <T>(path: string) => send<T>("GET", path);
export const post = <T>(path: string, body?: unknown, ifMatch?: string | null) =>
  send<T>("POST", path, body, { ifMatch });
export const put = <T>(path: string, body: unknown, ifMatch: string | null) => send<T>("PUT", path, body, { ifMatch });

const USER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Colleagues' names by user id, as far as asked this session (null: no such user). */
const names = new Map<string, string | null>();

/** Most ids one name lookup takes (the auth service's `MAX_NAME_LOOKUPS`; a test there checks this). */
const MAX_NAME_LOOKUPS = 25;

/**
 * The display names of the users among `ids` (`GET /api/users/names`, MAX_NAME_LOOKUPS ids a
 * call), each asked once a session. Ids that are no user (a service's, a deleted one) are left out.
 */
export async function userNames(ids: string[]): Promise<Map<string, string>> {
  const missing = [...new Set(ids)].filter((id) => USER_ID.test(id) && !names.has(id));
  for (let i = 0; i < missing.length; i += MAX_NAME_LOOKUPS) {
    const batch = missing.slice(i, i + MAX_NAME_LOOKUPS);
    const answer = await get<{ users: { id: string; displayName: string }[] }>(
      `/api/users/names${query({ ids: batch.join(",") })}`,
    );
    for (const id of batch) names.set(id, null);
    for (const u of answer.data.users) names.set(u.id, u.displayName);
  }
  const known = new Map<string, string>();
  for (const id of ids) {
    const name = names.get(id);
    if (name) known.set(id, name);
  }
  return known;
}

/** A query string of the given parameters (empty ones left out). */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}
