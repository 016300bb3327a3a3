// The front desk's "today": every practitioner's appointments starting today (each in the
// practitioner's zone), by start, with check-in and the rest of the lifecycle at hand.
import { useState } from "preact/hooks";
import { query } from "../api";
import type { Go } from "../app";
import { Alert, Field, Heading, ProblemAlert, statusText, useGet } from "../ui";
import { AppointmentItem, type Practitioner } from "./day";
import type { Appointment } from "./patient";

export function Today({ go }: { go: Go }) {
  const [practitionerId, setPractitionerId] = useState("");
  const [status, setStatus] = useState("");
  const [notice, setNotice] = useState("");
  const [reload, setReload] = useState(0);
  const staff = useGet<{ practitioners: Practitioner[] }>("/api/practitioners?limit=100&includeInactive=true");
  const today = useGet<{ appointments: Appointment[] }>(
    `/api/appointments/today${query({ practitionerId, status, limit: 100 })}`,
    reload,
  );
  const practitioners = staff.data?.practitioners ?? [];
  const items = today.data?.appointments ?? (today.problem ? [] : null);
  const problem = today.problem ?? staff.problem;

  const byId = new Map(practitioners.map((p) => [p.id, p]));
  return (
    <section>
      <Heading>Today</Heading>
      <div class="toolbar">
        <Field
          label="Practitioner"
          value={practitionerId}
          onInput={setPractitionerId}
          options={[["", "Everyone"], ...practitioners.map((p): [string, string] => [p.id, p.name])]}
        />
        <Field
          label="Status"
          value={status}
          onInput={setStatus}
          options={[["", "Any"], ...Object.entries(statusText)]}
        />
      </div>
      <ProblemAlert problem={problem} />
      {notice ? <Alert kind="ok">{notice}</Alert> : null}
      {items === null ? <p>Loading…</p> : null}
      {items && !items.length && !problem ? <p>No appointments today.</p> : null}
      {items && items.length ? (
        <ul class="booked today">
          {items.map((a) => {
            const p = byId.get(a.practitionerId);
            return (
              <AppointmentItem
                appointment={a}
                zone={a.timeZone}
                showZone
                practitionerName={p?.name}
                go={go}
                changed={(m) => {
                  setNotice(m);
                  setReload((n) => n + 1);
                }}
              />
            );
          })}
        </ul>
      ) : null}
    </section>
  );
}
