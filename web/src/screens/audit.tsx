// Admin: the audit trail of patient records: who saw or changed which record, when, from
// where; filtered by patient, user and date. Readable by admins only (the API says so too).
import { useEffect, useState } from "preact/hooks";
import { Problem, get, query } from "../api";
import { Field, Heading, ProblemAlert, dateTime, useUserNames } from "../ui";

interface AuditEvent {
  id: number;
  occurredAt: string;
  action: string;
  patientId?: string;
  actorId?: string;
  actorRoles: string[];
  clientAddress?: string;
  outcome: string;
}

export function Audit({ patientId: initial }: { patientId?: string }) {
  const [patientId, setPatientId] = useState(initial ?? "");
  const [userId, setUserId] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [events, setEvents] = useState<AuditEvent[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);

  const params = () => ({
    patientId: patientId.trim(),
    userId: userId.trim(),
    from: from ? `${from}T00:00:00Z` : undefined,
    to: to ? `${to}T23:59:59Z` : undefined,
    limit: 50,
  });

  const load = async (cursor?: string) => {
    try {
      const a = await get<{ events: AuditEvent[]; nextCursor?: string }>(
        `/api/audit-events${query({ ...params(), cursor })}`,
      );
      setEvents((now) => (cursor && now ? [...now, ...a.data.events] : a.data.events));
      setNext(a.data.nextCursor ?? null);
      setProblem(null);
    } catch (err) {
      setProblem(err as Problem);
    }
  };
  useEffect(() => void load(), []);

  const names = useUserNames((events ?? []).map((e) => e.actorId));
  const f = problem?.fields ?? {};
  return (
    <section>
      <Heading>Audit trail</Heading>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          void load();
        }}
      >
        <Field label="Patient id" value={patientId} onInput={setPatientId} error={f["?patientId"]} />
        <Field label="User id" value={userId} onInput={setUserId} error={f["?userId"]} />
        <Field label="From" type="date" value={from} onInput={setFrom} error={f["?from"]} />
        <Field label="To" type="date" value={to} onInput={setTo} error={f["?to"]} />
        <button type="submit">Show</button>
      </form>
      <ProblemAlert problem={problem} />
      {events ? (
        <table>
          <caption>Newest first</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">Action</th>
              <th scope="col">Patient</th>
              <th scope="col">Outcome</th>
              <th scope="col">From</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr>
                <td>{dateTime(e.occurredAt)}</td>
                <td>
                  {e.actorId && names.has(e.actorId) ? <>{names.get(e.actorId)} </> : null}
                  <code>{e.actorId ?? "—"}</code> <span class="muted">({e.actorRoles.join(", ")})</span>
                </td>
                <td>{e.action}</td>
                <td>
                  <code>{e.patientId ?? "—"}</code>
                </td>
                <td>{e.outcome}</td>
                <td>{e.clientAddress ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {next ? (
        <button type="button" class="secondary" onClick={() => void load(next)}>
          Show older
        </button>
      ) : null}
    </section>
  );
}
