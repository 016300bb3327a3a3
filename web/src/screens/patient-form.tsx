// Register and edit a patient. Errors come from the API's problem+json field pointers and sit
// beside their fields; a possible duplicate (same name and birth date) is shown before a new
// record is saved; an edit sends If-Match, and a 412 shows both versions side by side.
import { useRef, useState } from "preact/hooks";
import { Problem, get, post, put } from "../api";
import type { Go } from "../app";
import { Field, Heading, ProblemAlert } from "../ui";
import type { PatientSummary } from "./patients";

export interface Draft {
  givenName: string;
  familyName: string;
  birthDate: string;
  sex: string;
  email: string;
  phone: string;
  line: string;
  city: string;
  postalCode: string;
  country: string;
}

export interface Patient extends PatientSummary {
  email?: string;
  phone?: string;
  address?: { line?: string[]; city?: string; postalCode?: string; country?: string; state?: string };
  registeredAt: string;
  updatedAt: string;
  version: number;
}

const EMPTY: Draft = {
  givenName: "",
  familyName: "",
  birthDate: "",
  sex: "unknown",
  email: "",
  phone: "",
  line: "",
  city: "",
  postalCode: "",
  country: "",
};

export function draftOf(p: Patient): Draft {
  return {
    givenName: p.givenName,
    familyName: p.familyName,
    birthDate: p.birthDate,
    sex: p.sex,
    email: p.email ?? "",
    phone: p.phone ?? "",
    line: (p.address?.line ?? []).join(", "),
    city: p.address?.city ?? "",
    postalCode: p.address?.postalCode ?? "",
    country: p.address?.country ?? "",
  };
}

/** The API's input for a draft: empty optional members left out. */
function body(d: Draft) {
  const t = (s: string) => s.trim() || undefined;
  const address =
    d.line.trim() || d.city.trim() || d.postalCode.trim() || d.country.trim()
      ? {
          line: d.line.trim() ? [d.line.trim()] : [],
          city: t(d.city),
          postalCode: t(d.postalCode),
          country: t(d.country)?.toUpperCase(),
        }
      : undefined;
  return {
    givenName: d.givenName.trim(),
    familyName: d.familyName.trim(),
    birthDate: d.birthDate,
    sex: d.sex,
    email: t(d.email),
    phone: t(d.phone),
    address,
  };
}

/** The form field a problem's pointer names ("/address/city" -> "city"). */
function fieldOf(pointer: string): keyof Draft | "" {
  const parts = pointer.split("/").filter(Boolean);
  if (parts[0] === "address") return (parts[1] === "line" ? "line" : parts[1]) as keyof Draft;
  return (parts[0] ?? "") as keyof Draft;
}

const SEX: [string, string][] = [
  ["female", "Female"],
  ["male", "Male"],
  ["other", "Other"],
  ["unknown", "Unknown"],
];

export const LABELS: Record<keyof Draft, string> = {
  givenName: "Given name",
  familyName: "Family name",
  birthDate: "Birth date",
  sex: "Sex",
  email: "Email",
  phone: "Phone",
  line: "Street and number",
  city: "City",
  postalCode: "Postal code",
  country: "Country (two letters, e.g. DE)",
};

interface Props {
  go: Go;
  draft?: Partial<Draft>;
  /** Editing this record (at `etag`), else registering. */
  editing?: { patient: Patient; etag: string };
  onSaved?: (patient: Patient, etag: string) => void;
  onCancel?: () => void;
}

export function PatientForm({ go, draft, editing, onSaved, onCancel }: Props) {
  const [form, setForm] = useState<Draft>(editing ? draftOf(editing.patient) : { ...EMPTY, ...draft });
  const [errors, setErrors] = useState<Partial<Record<keyof Draft, string>>>({});
  const [problem, setProblem] = useState<Problem | null>(null);
  const [duplicates, setDuplicates] = useState<PatientSummary[] | null>(null);
  const [conflict, setConflict] = useState<{ theirs: Patient; etag: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const etag = useRef(editing?.etag ?? null);
  // The version the edit started from: what "my changes" are measured against on a conflict.
  const base = useRef<Draft>(editing ? draftOf(editing.patient) : EMPTY);
  const firstInput = useRef<HTMLInputElement | HTMLSelectElement | null>(null);

  const set = (k: keyof Draft) => (v: string) => setForm((f) => ({ ...f, [k]: v }));

  const fail = (err: unknown) => {
    const p = err instanceof Problem ? err : new Problem(0, "Not saved", String(err), {});
    const byField: Partial<Record<keyof Draft, string>> = {};
    const unplaced: string[] = [];
    for (const [pointer, detail] of Object.entries(p.fields)) {
      const f = fieldOf(pointer);
      if (f && f in LABELS) byField[f] = detail;
      else unplaced.push(detail);
    }
    if (p.status === 409 && !Object.keys(byField).length) byField.email = p.message;
    setErrors(byField);
    setProblem(p);
    // Move to the first invalid field, so a keyboard user lands on what to fix.
    window.setTimeout(() => document.querySelector<HTMLElement>("[aria-invalid=true]")?.focus(), 0);
  };

  const save = async (force = false) => {
    setBusy(true);
    setProblem(null);
    try {
      if (editing) {
        const answer = await put<Patient>(`/api/patients/${editing.patient.id}`, body(form), etag.current);
        onSaved?.(answer.data, answer.etag ?? "");
      } else {
        if (!force && form.givenName.trim() && form.familyName.trim() && form.birthDate) {
          const found = await post<{ patients: PatientSummary[] }>("/api/patients/search", {
            name: `${form.givenName.trim()} ${form.familyName.trim()}`,
            birthDate: form.birthDate,
            limit: 5,
          }).catch(() => null);
          const same = (found?.data.patients ?? []).filter((p) => p.birthDate === form.birthDate);
          if (same.length) {
            setDuplicates(same);
            setBusy(false);
            return;
          }
        }
        const answer = await post<Patient>("/api/patients", body(form));
        go({ name: "patient", id: answer.data.id });
      }
      setErrors({});
    } catch (err) {
      if (err instanceof Problem && err.status === 412 && editing) {
        const current = await get<Patient>(`/api/patients/${editing.patient.id}`);
        setConflict({ theirs: current.data, etag: current.etag ?? "" });
      } else {
        fail(err);
      }
    }
    setBusy(false);
  };

  const field = (k: keyof Draft, extra: Partial<Parameters<typeof Field>[0]> = {}) => (
    <Field label={LABELS[k]} value={form[k]} onInput={set(k)} error={errors[k]} {...extra} />
  );

  return (
    <section>
      {editing ? <h2>Edit the record</h2> : <Heading>Register a patient</Heading>}
      <ProblemAlert problem={problem} />
      {conflict ? (
        <Conflict
          base={base.current}
          mine={form}
          theirs={conflict.theirs}
          keepTheirs={() => {
            setForm(draftOf(conflict.theirs));
            base.current = draftOf(conflict.theirs);
            etag.current = conflict.etag;
            setConflict(null);
          }}
          merge={() => {
            setForm(merged(base.current, form, draftOf(conflict.theirs)));
            base.current = draftOf(conflict.theirs);
            etag.current = conflict.etag;
            setConflict(null);
          }}
        />
      ) : null}
      {duplicates ? (
        <div class="alert info" role="alertdialog" aria-labelledby="dup-title">
          <h2 id="dup-title">Is this one of them?</h2>
          <p>
            {duplicates.length === 1 ? "A patient" : `${duplicates.length} patients`} with this name and birth date
            {duplicates.length === 1 ? " is" : " are"} already registered:
          </p>
          <ul>
            {duplicates.map((p) => (
              <li>
                <button type="button" class="link" onClick={() => go({ name: "patient", id: p.id })}>
                  {p.familyName}, {p.givenName}, born {p.birthDate}, MRN {p.mrn}
                </button>
              </li>
            ))}
          </ul>
          <button
            type="button"
            onClick={() => {
              setDuplicates(null);
              void save(true);
            }}
          >
            No, register a new patient
          </button>
        </div>
      ) : null}
      <form
        class="grid"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        {field("givenName", { required: true, inputRef: firstInput })}
        {field("familyName", { required: true })}
        {field("birthDate", { required: true, type: "date" })}
        {field("sex", { required: true, options: SEX })}
        {field("email", { type: "email" })}
        {field("phone", { type: "tel", hint: "International format, e.g. +49 30 123456" })}
        {field("line", { wide: true })}
        {field("city")}
        {field("postalCode")}
        {field("country")}
        <div class="actions wide">
          <button type="submit" disabled={busy}>
            {busy ? "Saving…" : editing ? "Save changes" : "Register"}
          </button>
          {onCancel ? (
            <button type="button" class="secondary" onClick={onCancel}>
              Cancel
            </button>
          ) : null}
        </div>
      </form>
    </section>
  );
}

/** Their version with my changes (the fields I changed since `base`) applied on top. */
export function merged(base: Draft, mine: Draft, theirs: Draft): Draft {
  const out = { ...theirs };
  for (const k of Object.keys(LABELS) as (keyof Draft)[]) if (mine[k] !== base[k]) out[k] = mine[k];
  return out;
}

function Conflict(p: { base: Draft; mine: Draft; theirs: Patient; keepTheirs: () => void; merge: () => void }) {
  const theirs = draftOf(p.theirs);
  const keys = Object.keys(LABELS) as (keyof Draft)[];
  const mineChanged = (k: keyof Draft) => p.mine[k] !== p.base[k];
  const theyChanged = (k: keyof Draft) => theirs[k] !== p.base[k];
  const clash = keys.filter((k) => mineChanged(k) && theyChanged(k) && p.mine[k] !== theirs[k]);
  return (
    <div class="alert error conflict" role="alert">
      <h2>Someone else changed this record</h2>
      <p>
        It is now at version {p.theirs.version}, saved {new Date(p.theirs.updatedAt).toLocaleString("en-GB")}. Your
        changes are not saved yet. Rows that either of you changed are marked.
        {clash.length
          ? ` You both changed ${clash.map((k) => LABELS[k]).join(", ")}: applying your changes keeps yours there.`
          : ""}
      </p>
      <table>
        <caption class="sr-only">The record as it was, their version and your changes, field by field</caption>
        <thead>
          <tr>
            <th scope="col">Field</th>
            <th scope="col">Before</th>
            <th scope="col">Their version</th>
            <th scope="col">Your change</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => (
            <tr class={mineChanged(k) || theyChanged(k) ? "differs" : undefined}>
              <th scope="row">{LABELS[k]}</th>
              <td>{p.base[k]}</td>
              <td>
                {theirs[k]}
                {theyChanged(k) ? <span class="sr-only"> (changed by them)</span> : null}
              </td>
              <td>{mineChanged(k) ? p.mine[k] || "(emptied)" : <span class="muted">unchanged</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="actions">
        <button type="button" onClick={p.merge}>
          Apply my changes to their version
        </button>
        <button type="button" class="secondary" onClick={p.keepTheirs}>
          Discard my changes
        </button>
      </div>
      <p class="hint">Either way, the form below shows the result; nothing is saved until you save it.</p>
    </div>
  );
}
