// One patient's record: details, edit, history (what changed, when, by whom), upcoming and
// past appointments, the messages sent to them with their delivery state, and deactivation
// (confirmed, with a reason).
import { useEffect, useState } from "preact/hooks";
import { Problem, get, hasRole, query, send, user } from "../api";
import type { Go } from "../app";
import { Alert, Field, Heading, ProblemAlert, dateTime, statusText, useGet, useUserNames } from "../ui";
import { LABELS, PatientForm, draftOf, type Draft, type Patient } from "./patient-form";

export interface Appointment {
  id: string;
  patientId: string;
  practitionerId: string;
  type?: string;
  start: string;
  end: string;
  timeZone: string;
  status: string;
  reason?: string;
  cancelReason?: string;
  version: number;
}

interface Version {
  version: number;
  recordedAt: string;
  recordedBy?: string;
  reason?: string;
  patient: Patient;
}

interface Delivery {
  id: string;
  kind: string;
  channel: string;
  status: string;
  dueAt: string;
  attempts: number;
  lastError?: string;
  subject?: string;
  sentAt?: string;
}

const KIND: Record<string, string> = {
  welcome: "Welcome",
  confirmation: "Booking confirmation",
  rescheduled: "Rescheduling notice",
  cancellation: "Cancellation notice",
  reminder: "Reminder",
};

export function PatientRecord({ id, go }: { id: string; go: Go }) {
  const [patient, setPatient] = useState<Patient | null>(null);
  const [etag, setEtag] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [editing, setEditing] = useState(false);
  const [saved, setSaved] = useState(false);
  const [tab, setTab] = useState<"appointments" | "messages" | "history">("appointments");

  const load = () =>
    get<Patient>(`/api/patients/${id}`)
      .then((a) => {
        setPatient(a.data);
        setEtag(a.etag ?? "");
      })
      .catch((err: Problem) => {
        setProblem(err);
        // A deactivated record answers 410; its history still tells who it was.
        if (err.status === 410)
          void get<{ versions: Version[] }>(`/api/patients/${id}/history`).then((h) => {
            const last = h.data.versions[0];
            if (last) setPatient({ ...last.patient, active: false });
          });
      });

  useEffect(() => void load(), [id]);

  if (!patient) {
    return (
      <section>
        <Heading>Patient record</Heading>
        {problem ? <ProblemAlert problem={problem} /> : <p>Loading…</p>}
      </section>
    );
  }

  return (
    <section>
      <Heading>
        {patient.familyName}, {patient.givenName}
        {patient.active ? null : <span class="badge">deactivated</span>}
      </Heading>
      {saved ? <Alert kind="ok">Saved.</Alert> : null}
      {editing ? (
        <PatientForm
          go={go}
          editing={{ patient, etag }}
          onSaved={(p, tag) => {
            setPatient(p);
            setEtag(tag);
            setEditing(false);
            setSaved(true);
          }}
          onCancel={() => setEditing(false)}
        />
      ) : (
        <>
          <Details patient={patient} />
          {patient.active ? (
            <div class="actions">
              {hasRole("receptionist") ? (
                <button
                  type="button"
                  onClick={() => {
                    setSaved(false);
                    setEditing(true);
                  }}
                >
                  Edit
                </button>
              ) : null}
              {hasRole("receptionist", "clinician") ? (
                <button type="button" class="secondary" onClick={() => go({ name: "day", patientId: patient.id })}>
                  Book an appointment
                </button>
              ) : null}
              {hasRole("receptionist") ? <Deactivate patient={patient} etag={etag} done={() => void load()} /> : null}
            </div>
          ) : null}
        </>
      )}
      <div role="tablist" aria-label="About this patient" class="tabs">
        {(["appointments", "messages", "history"] as const).map((t) => (
          <button
            type="button"
            role="tab"
            id={`tab-${t}`}
            aria-selected={tab === t}
            aria-controls={`panel-${t}`}
            tabIndex={tab === t ? 0 : -1}
            onClick={() => setTab(t)}
            onKeyDown={(e) => {
              const order = ["appointments", "messages", "history"] as const;
              const at = order.indexOf(t);
              const next =
                e.key === "ArrowRight" ? order[(at + 1) % 3] : e.key === "ArrowLeft" ? order[(at + 2) % 3] : null;
              if (next) {
                setTab(next);
                document.getElementById(`tab-${next}`)?.focus();
              }
            }}
          >
            {t === "appointments" ? "Appointments" : t === "messages" ? "Messages" : "History"}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`} tabIndex={0}>
        {tab === "appointments" ? <Appointments patientId={id} /> : null}
        {tab === "messages" ? <Messages patientId={id} /> : null}
        {tab === "history" ? <History patientId={id} /> : null}
      </div>
    </section>
  );
}

function Details({ patient: p }: { patient: Patient }) {
  const address = p.address
    ? [...(p.address.line ?? []), [p.address.postalCode, p.address.city].filter(Boolean).join(" "), p.address.country]
        .filter(Boolean)
        .join(", ")
    : "";
  return (
    <dl class="details">
      <dt>MRN</dt>
      <dd>{p.mrn}</dd>
      <dt>Birth date</dt>
      <dd>{p.birthDate}</dd>
      <dt>Sex</dt>
      <dd>{p.sex}</dd>
      <dt>Email</dt>
      <dd>{p.email || "—"}</dd>
      <dt>Phone</dt>
      <dd>{p.phone || "—"}</dd>
      <dt>Address</dt>
      <dd>{address || "—"}</dd>
      <dt>Registered</dt>
      <dd>{dateTime(p.registeredAt)}</dd>
    </dl>
  );
}

function Deactivate({ patient, etag, done }: { patient: Patient; etag: string; done: () => void }) {
  const [asking, setAsking] = useState(false);
  const [reason, setReason] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [error, setError] = useState<string | undefined>();
  if (!asking) {
    return (
      <button type="button" class="danger" onClick={() => setAsking(true)}>
        Deactivate…
      </button>
    );
  }
  const confirm = async () => {
    if (!reason.trim()) {
      setError("Say why the record is deactivated.");
      return;
    }
    try {
      // The reason travels in the body (never in the URL) and is kept in the record's history.
      await send("DELETE", `/api/patients/${patient.id}`, { reason: reason.trim() }, { ifMatch: etag });
      done();
    } catch (err) {
      setProblem(err as Problem);
    }
  };
  return (
    <div role="alertdialog" aria-labelledby="deactivate-title" class="alert info">
      <h2 id="deactivate-title">
        Deactivate {patient.givenName} {patient.familyName}?
      </h2>
      <p>The record stays readable in its history; future appointments are cancelled.</p>
      <ProblemAlert problem={problem} />
      <Field label="Reason" value={reason} onInput={setReason} error={error} required />
      <div class="actions">
        <button type="button" class="danger" onClick={() => void confirm()}>
          Deactivate the record
        </button>
        <button type="button" class="secondary" onClick={() => setAsking(false)}>
          Keep it active
        </button>
      </div>
    </div>
  );
}

export function Appointments({ patientId }: { patientId: string }) {
  const { data, problem } = useGet<{ appointments: Appointment[] }>(
    `/api/appointments${query({ patientId, limit: 100 })}`,
  );
  if (problem) return <ProblemAlert problem={problem} />;
  if (!data) return <p>Loading…</p>;
  const items = data.appointments;
  const now = Date.now();
  const upcoming = items.filter((a) => Date.parse(a.end) >= now);
  const past = items.filter((a) => Date.parse(a.end) < now).reverse();
  const table = (rows: Appointment[], caption: string) => (
    <table>
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Type</th>
          <th scope="col">Status</th>
        </tr>
      </thead>
      <tbody>
        {rows.length ? (
          rows.map((a) => (
            <tr>
              <td>
                {dateTime(a.start, a.timeZone)} <span class="zone">{a.timeZone}</span>
              </td>
              <td>{a.type ?? "—"}</td>
              <td>
                {statusText[a.status] ?? a.status}
                {a.cancelReason ? ` (${a.cancelReason})` : ""}
              </td>
            </tr>
          ))
        ) : (
          <tr>
            <td colSpan={3}>None.</td>
          </tr>
        )}
      </tbody>
    </table>
  );
  return (
    <>
      {table(upcoming, "Upcoming")}
      {table(past, "Past")}
    </>
  );
}

function Messages({ patientId }: { patientId: string }) {
  const { data, problem } = useGet<{ notifications: Delivery[] }>(
    `/api/notifications${query({ patientId, limit: 100 })}`,
  );
  if (problem) return <ProblemAlert problem={problem} />;
  if (!data) return <p>Loading…</p>;
  const items = data.notifications;
  return (
    <table class="messages">
      <caption>Messages to this patient</caption>
      <thead>
        <tr>
          <th scope="col">Message</th>
          <th scope="col">Channel</th>
          <th scope="col">Due (your time)</th>
          <th scope="col">State</th>
        </tr>
      </thead>
      <tbody>
        {items.length ? (
          items.map((m) => (
            <tr>
              <td>{KIND[m.kind] ?? m.kind}</td>
              <td>{m.channel === "sms" ? "SMS" : "Email"}</td>
              <td>{dateTime(m.dueAt)}</td>
              <td>
                <span class={`state ${m.status}`}>{m.status}</span>
                {m.sentAt ? ` ${dateTime(m.sentAt)}` : ""}
                {m.lastError ? ` — ${m.lastError}` : ""}
                {m.attempts > 1 ? ` (${m.attempts} attempts)` : ""}
              </td>
            </tr>
          ))
        ) : (
          <tr>
            <td colSpan={4}>No messages.</td>
          </tr>
        )}
      </tbody>
    </table>
  );
}

function History({ patientId }: { patientId: string }) {
  const { data, problem } = useGet<{ versions: Version[] }>(`/api/patients/${patientId}/history`);
  if (problem) return <ProblemAlert problem={problem} />;
  if (!data) return <p>Loading…</p>;
  const versions = data.versions;
  const me = user()?.id;
  const names = useUserNames(versions.map((v) => v.recordedBy));
  return (
    <ol class="history" reversed>
      {versions.map((v, i) => {
        const before = versions[i + 1];
        const changes = before ? changed(draftOf(before.patient), draftOf(v.patient)) : [];
        const active = before && before.patient.active !== v.patient.active;
        return (
          <li>
            <p>
              <strong>Version {v.version}</strong>, {dateTime(v.recordedAt)}
              {v.recordedBy ? `, by ${v.recordedBy === me ? "you" : (names.get(v.recordedBy) ?? v.recordedBy)}` : ""}
            </p>
            {!before ? <p>Registered.</p> : null}
            {active ? <p>{v.patient.active ? "Reactivated." : "Deactivated."}</p> : null}
            {v.reason ? <p>Reason: {v.reason}</p> : null}
            {changes.length ? (
              <ul>
                {changes.map(([label, from, to]) => (
                  <li>
                    {label}: <del>{from || "(empty)"}</del> → <ins>{to || "(empty)"}</ins>
                  </li>
                ))}
              </ul>
            ) : null}
          </li>
        );
      })}
    </ol>
  );
}

function changed(a: Draft, b: Draft): [string, string, string][] {
  return (Object.keys(LABELS) as (keyof Draft)[]).filter((k) => a[k] !== b[k]).map((k) => [LABELS[k], a[k], b[k]]);
}
