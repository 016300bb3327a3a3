// Small accessible building blocks shared by every screen: labelled fields whose errors are
// announced and tied to their input, alerts, and formatting of dates in a named zone.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { Problem, get, userNames } from "./api";

let nextId = 0;
/** A stable id for one rendered element (labels and descriptions need them). */
export function useId(prefix: string): string {
  const ref = useRef<string | null>(null);
  if (!ref.current) ref.current = `${prefix}-${++nextId}`;
  return ref.current;
}

interface FieldProps {
  label: string;
  value: string;
  onInput: (value: string) => void;
  error?: string;
  hint?: string;
  type?: string;
  required?: boolean;
  autoComplete?: string;
  name?: string;
  options?: [string, string][];
  inputRef?: { current: HTMLInputElement | HTMLSelectElement | null };
  wide?: boolean;
}

/** A labelled input (or select, with `options`); its error sits beside it and is announced. */
export function Field(p: FieldProps) {
  const id = useId("field");
  const described = [p.hint ? `${id}-hint` : "", p.error ? `${id}-error` : ""].filter(Boolean).join(" ");
  const common = {
    id,
    name: p.name,
    value: p.value,
    required: p.required,
    "aria-invalid": p.error ? ("true" as const) : undefined,
    "aria-describedby": described || undefined,
    onInput: (e: Event) => p.onInput((e.currentTarget as HTMLInputElement | HTMLSelectElement).value),
  };
  return (
    <div class={`field${p.error ? " invalid" : ""}${p.wide ? " wide" : ""}`}>
      <label for={id}>
        {p.label}
        {p.required ? <span aria-hidden="true"> *</span> : null}
      </label>
      {p.options ? (
        <select {...common} ref={p.inputRef as { current: HTMLSelectElement | null }}>
          {p.options.map(([value, text]) => (
            <option value={value}>{text}</option>
          ))}
        </select>
      ) : (
        <input
          {...common}
          type={(p.type ?? "text") as "text"}
          autoComplete={p.autoComplete ?? "off"}
          ref={p.inputRef as { current: HTMLInputElement | null }}
        />
      )}
      {p.hint ? (
        <p class="hint" id={`${id}-hint`}>
          {p.hint}
        </p>
      ) : null}
      {p.error ? (
        <p class="field-error" id={`${id}-error`}>
          {p.error}
        </p>
      ) : null}
    </div>
  );
}

/**
 * `GET path` whenever `path` or `reload` changes: the answer's body, or the problem. An answer
 * that arrives after a newer request was sent is ignored.
 */
export function useGet<T>(path: string | null, reload = 0): { data: T | null; problem: Problem | null } {
  const [state, setState] = useState<{ data: T | null; problem: Problem | null }>({ data: null, problem: null });
  useEffect(() => {
    if (!path) return;
    let current = true;
    get<T>(path)
      .then((a) => current && setState({ data: a.data, problem: null }))
      .catch((p: Problem) => current && setState({ data: null, problem: p }));
    return () => {
      current = false;
    };
  }, [path, reload]);
  return state;
}

/**
 * The names of the users among `ids`, once known; until then (or if they cannot be asked)
 * the map lacks them and callers show the id.
 */
export function useUserNames(ids: (string | undefined)[]): Map<string, string> {
  const key = [...new Set(ids.filter((id): id is string => !!id))].sort().join(",");
  const [known, setKnown] = useState<Map<string, string>>(new Map());
  useEffect(() => {
    if (!key) return;
    let current = true;
    userNames(key.split(","))
      .then((n) => current && setKnown(n))
      .catch(() => undefined); // names are a courtesy: the ids still say who
    return () => {
      current = false;
    };
  }, [key]);
  return known;
}

/** A message that screen readers announce when it appears. */
export function Alert({ kind = "error", children }: { kind?: "error" | "info" | "ok"; children: ComponentChildren }) {
  return (
    <div class={`alert ${kind}`} role={kind === "error" ? "alert" : "status"}>
      {children}
    </div>
  );
}

/** The problem's message, or nothing. */
export function ProblemAlert({ problem }: { problem: Problem | null }) {
  if (!problem) return null;
  const extra = Object.keys(problem.fields).length ? " The fields concerned are marked below." : "";
  return (
    <Alert>
      {problem.status === 403 ? <strong>Not allowed. </strong> : null}
      {problem.message}
      {extra}
    </Alert>
  );
}

/** The screen's heading, focused when the screen opens so keyboard and reader users land there. */
export function Heading({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {children}
    </h1>
  );
}

/** "Tue 12 Jan 2027, 09:30" in `zone`. */
export function dateTime(iso: string, zone?: string): string {
  return new Intl.DateTimeFormat("en-GB", {
    weekday: "short",
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    timeZone: zone,
  }).format(new Date(iso));
}

/** "09:30" in `zone`. */
export function time(iso: string, zone?: string): string {
  return new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: zone }).format(
    new Date(iso),
  );
}

/** "Tue 12 Jan" of a calendar date (YYYY-MM-DD). */
export function day(date: string): string {
  return new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" }).format(
    new Date(`${date}T00:00:00Z`),
  );
}

/** A zone's short label ("Europe/Berlin, CET"), shown beside times. */
export function zoneLabel(zone: string, at = new Date()): string {
  const part = new Intl.DateTimeFormat("en-GB", { timeZone: zone, timeZoneName: "short" })
    .formatToParts(at)
    .find((p) => p.type === "timeZoneName");
  return part ? `${zone} (${part.value})` : zone;
}

/** Today's date (YYYY-MM-DD) in `zone`. */
export function today(zone?: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(new Date());
}

/** `date` (YYYY-MM-DD) moved by `days`. */
export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

export const statusText: Record<string, string> = {
  booked: "Booked",
  checked_in: "Checked in",
  completed: "Completed",
  cancelled: "Cancelled",
  no_show: "No-show",
};
