// Find a patient as you type: one box that understands a name (typos and accents tolerated by
// the API), an MRN, a phone number, an email or a birth date, with an optional birth date
// beside it. Results are keyboard-navigable; "no match" offers registration with what was typed.
import { useEffect, useRef, useState } from "preact/hooks";
import { Problem, hasRole, post } from "../api";
import type { Go } from "../app";
import { Field, Heading, ProblemAlert } from "../ui";

export interface PatientSummary {
  id: string;
  mrn: string;
  givenName: string;
  familyName: string;
  birthDate: string;
  sex: string;
  active: boolean;
  phone?: string;
  email?: string;
}

/** What the typed text is: the API filter it becomes. */
export function filterOf(text: string): Record<string, string> {
  const t = text.trim();
  if (!t) return {};
  if (/^\d{9}$/.test(t)) return { mrn: t };
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) return { birthDate: t };
  const dmy = /^(\d{1,2})[./](\d{1,2})[./](\d{4})$/.exec(t);
  if (dmy) return { birthDate: `${dmy[3]}-${dmy[2].padStart(2, "0")}-${dmy[1].padStart(2, "0")}` };
  if (t.includes("@")) return { email: t };
  if (/^\+?[\d\s().-]{7,}$/.test(t)) return { phone: t.startsWith("+") ? t : `+${t}` };
  return { name: t };
}

const DEBOUNCE_MS = 60;

export function Patients({ go }: { go: Go }) {
  const frontDesk = hasRole("receptionist");
  const [text, setText] = useState("");
  const [birthDate, setBirthDate] = useState("");
  const [results, setResults] = useState<PatientSummary[] | null>(null);
  // The text whose answer is shown (so a changed answer is visible even when its rows are not).
  const [answered, setAnswered] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [fieldError, setFieldError] = useState<string | undefined>();
  const latest = useRef(0);
  const list = useRef<HTMLUListElement>(null);
  const input = useRef<HTMLInputElement>(null);
  // The box takes the focus when the screen opens: searching is what it is for.
  useEffect(() => input.current?.focus(), []);

  useEffect(() => {
    const filter = filterOf(text);
    if (birthDate) filter.birthDate = birthDate;
    if (!Object.keys(filter).length) {
      setResults(null);
      setProblem(null);
      setFieldError(undefined);
      return;
    }
    const ask = ++latest.current;
    const timer = window.setTimeout(async () => {
      try {
        const answer = await post<{ patients: PatientSummary[] }>("/api/patients/search", { ...filter, limit: 20 });
        if (ask !== latest.current) return;
        setResults(answer.data.patients);
        setAnswered(`${text}|${birthDate}`);
        setProblem(null);
        setFieldError(undefined);
      } catch (err) {
        if (ask !== latest.current) return;
        const p = err as Problem;
        const field = Object.values(p.fields ?? {})[0];
        if (p.status === 422 && field) {
          setFieldError(field);
          setProblem(null);
        } else {
          setProblem(p);
        }
        setResults(null);
      }
    }, DEBOUNCE_MS);
    return () => window.clearTimeout(timer);
  }, [text, birthDate]);

  const move = (e: KeyboardEvent) => {
    const items = Array.from(list.current?.querySelectorAll<HTMLButtonElement>("button") ?? []);
    if (!items.length) return;
    const at = items.indexOf(document.activeElement as HTMLButtonElement);
    if (e.key === "ArrowDown") {
      e.preventDefault();
      items[Math.min(at + 1, items.length - 1)].focus();
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      if (at <= 0) input.current?.focus();
      else items[at - 1].focus();
    }
  };

  const register = () => {
    const filter = filterOf(text);
    const words = (filter.name ?? "").split(/\s+/).filter(Boolean);
    go({
      name: "register",
      draft: {
        givenName: words.length > 1 ? words.slice(0, -1).join(" ") : "",
        familyName: words.length ? words[words.length - 1] : "",
        birthDate: birthDate || filter.birthDate || "",
        email: filter.email ?? "",
        phone: filter.phone ?? "",
      },
    });
  };

  return (
    <section onKeyDown={move}>
      <Heading>Find a patient</Heading>
      <div class="search-bar" role="search">
        <div class="field wide">
          <label for="patient-search">Name, MRN, phone, email or birth date</label>
          <input
            id="patient-search"
            type="search"
            value={text}
            autoComplete="off"
            spellcheck={false}
            aria-describedby="patient-search-hint"
            aria-invalid={fieldError ? "true" : undefined}
            onInput={(e) => setText(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter") list.current?.querySelector("button")?.click();
            }}
            ref={input}
          />
          <p class="hint" id="patient-search-hint">
            Typos and accents are fine: "jhon muller" finds John Müller. Arrow keys move through the results.
          </p>
          {fieldError ? <p class="field-error">{fieldError}</p> : null}
        </div>
        <Field label="Birth date" type="date" value={birthDate} onInput={setBirthDate} />
        {frontDesk ? (
          <button type="button" class="secondary" onClick={register}>
            Register a new patient
          </button>
        ) : null}
      </div>
      <ProblemAlert problem={problem} />
      <div aria-live="polite" class="sr-only">
        {results ? `${results.length} ${results.length === 1 ? "patient" : "patients"} found` : ""}
      </div>
      {results && results.length === 0 ? (
        <div class="empty" data-answer={answered}>
          <p>No patient matches.</p>
          {frontDesk ? (
            <button type="button" onClick={register}>
              Register “{text.trim() || birthDate}” as a new patient
            </button>
          ) : null}
        </div>
      ) : null}
      {results && results.length > 0 ? (
        <ul class="results" ref={list} aria-label="Matching patients" data-answer={answered}>
          {results.map((p) => (
            <li>
              <button type="button" class="result" onClick={() => go({ name: "patient", id: p.id })}>
                <span class="name">
                  {p.familyName}, {p.givenName}
                </span>
                <span>born {p.birthDate}</span>
                <span>MRN {p.mrn}</span>
                {p.active ? null : <span class="badge">deactivated</span>}
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
