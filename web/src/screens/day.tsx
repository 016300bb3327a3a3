// A practitioner's day or week: free times from the availability API beside what is booked,
// booking a free time in two clicks, and the appointment lifecycle (reschedule, cancel with a
// reason, check in, complete, no-show). Times are in the practitioner's zone, labelled.
import { useEffect, useRef, useState } from "preact/hooks";
import { Problem, get, post, query } from "../api";
import type { Go } from "../app";
import { Alert, Field, Heading, ProblemAlert, addDays, day, time, today, zoneLabel } from "../ui";
import type { Patient } from "./patient-form";
import type { Appointment } from "./patient";
import { filterOf, type PatientSummary } from "./patients";

export interface Practitioner {
  id: string;
  name: string;
  specialty: string;
  location?: string;
  timeZone: string;
  active: boolean;
}

interface Kind {
  code: string;
  name: string;
  minutes: number;
}

interface Slot {
  start: string;
  end: string;
}

/** The calendar date (YYYY-MM-DD) of `iso` in `zone`. */
export function localDate(iso: string, zone: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(new Date(iso));
}

/** Patients by id, read once per session screen (each read is audited by pms). */
const names = new Map<string, Promise<string>>();
export function patientName(id: string): Promise<string> {
  let name = names.get(id);
  if (!name) {
    name = get<Patient>(`/api/patients/${id}`)
      .then((a) => `${a.data.familyName}, ${a.data.givenName}`)
      .catch(() => "(record not available)");
    names.set(id, name);
  }
  return name;
}

export function PatientName({ id }: { id: string }) {
  const [name, setName] = useState("…");
  useEffect(() => void patientName(id).then(setName), [id]);
  return <>{name}</>;
}

/** Monday of the week of `date`. */
function monday(date: string): string {
  const weekday = (new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7;
  return addDays(date, -weekday);
}

export function Day({ go, patientId }: { go: Go; patientId?: string }) {
  const [practitioners, setPractitioners] = useState<Practitioner[]>([]);
  const [kinds, setKinds] = useState<Kind[]>([]);
  const [practitionerId, setPractitionerId] = useState("");
  const [kind, setKind] = useState("consultation");
  const [date, setDate] = useState(today());
  const [view, setView] = useState<"day" | "week">("day");
  const [slots, setSlots] = useState<Slot[]>([]);
  const [booked, setBooked] = useState<Appointment[]>([]);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [notice, setNotice] = useState("");
  const [choosing, setChoosing] = useState<Slot | null>(null);
  const [moving, setMoving] = useState<Appointment | null>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    get<{ practitioners: Practitioner[] }>("/api/practitioners?limit=100")
      .then((a) => {
        setPractitioners(a.data.practitioners);
        if (a.data.practitioners[0]) setPractitionerId((now) => now || a.data.practitioners[0].id);
      })
      .catch(setProblem);
    get<{ types: Kind[] }>("/api/appointment-types")
      .then((a) => setKinds(a.data.types))
      .catch(setProblem);
  }, []);

  const practitioner = practitioners.find((p) => p.id === practitionerId);
  const zone = practitioner?.timeZone ?? "UTC";
  const days = view === "day" ? [date] : Array.from({ length: 7 }, (_, i) => addDays(monday(date), i));

  useEffect(() => {
    if (!practitioner) return;
    // A day either side covers every zone's offset; what is shown is filtered by local date.
    const from = `${addDays(days[0], -1)}T00:00:00Z`;
    const to = `${addDays(days[days.length - 1], 2)}T00:00:00Z`;
    const now = new Date().toISOString();
    const slotsFrom = from < now ? now : from;
    Promise.all([
      slotsFrom < to
        ? get<{ slots: Slot[] }>(
            `/api/practitioners/${practitioner.id}/availability${query({ from: slotsFrom, to, type: kind })}`,
          ).then((a) => a.data.slots)
        : Promise.resolve([]),
      get<{ appointments: Appointment[] }>(
        `/api/appointments${query({ practitionerId: practitioner.id, from, to, limit: 100 })}`,
      ).then((a) => a.data.appointments),
    ])
      .then(([free, appointments]) => {
        setSlots(free);
        setBooked(appointments);
        setProblem(null);
      })
      .catch(setProblem);
  }, [practitioner?.id, kind, date, view, reload]);

  const refresh = (message: string) => {
    setNotice(message);
    setChoosing(null);
    setMoving(null);
    setReload((n) => n + 1);
  };

  const pick = async (slot: Slot) => {
    setNotice("");
    if (moving) {
      try {
        await post(`/api/appointments/${moving.id}/reschedule`, { start: slot.start }, `"${moving.version}"`);
        refresh(`Moved to ${day(localDate(slot.start, zone))} ${time(slot.start, zone)}.`);
      } catch (err) {
        setProblem(err as Problem);
        setReload((n) => n + 1);
      }
    } else {
      setChoosing(slot);
    }
  };

  return (
    <section>
      <Heading>Calendar</Heading>
      <div class="toolbar">
        <Field
          label="Practitioner"
          value={practitionerId}
          onInput={setPractitionerId}
          options={practitioners.map((p) => [p.id, `${p.name} (${p.specialty})`])}
        />
        <Field
          label="Appointment type"
          value={kind}
          onInput={setKind}
          options={kinds.map((k) => [k.code, `${k.name} (${k.minutes} min)`])}
        />
        <Field label="Date" type="date" value={date} onInput={(v) => v && setDate(v)} />
        <div class="field">
          <span class="label" id="view-label">
            View
          </span>
          <div role="group" aria-labelledby="view-label" class="segmented">
            <button type="button" aria-pressed={view === "day"} onClick={() => setView("day")}>
              Day
            </button>
            <button type="button" aria-pressed={view === "week"} onClick={() => setView("week")}>
              Week
            </button>
          </div>
        </div>
        <div class="field">
          <span class="label">Move</span>
          <div class="segmented">
            <button type="button" onClick={() => setDate(addDays(date, view === "day" ? -1 : -7))}>
              ← Earlier
            </button>
            <button type="button" onClick={() => setDate(addDays(date, view === "day" ? 1 : 7))}>
              Later →
            </button>
          </div>
        </div>
      </div>
      {practitioner ? (
        <p class="zone-note">
          Times are in the practitioner's zone: <strong>{zoneLabel(zone)}</strong>
          {practitioner.location ? `, at ${practitioner.location}` : ""}.
        </p>
      ) : null}
      <ProblemAlert problem={problem} />
      {notice ? <Alert kind="ok">{notice}</Alert> : null}
      {moving ? (
        <Alert kind="info">
          Choose the new time for this appointment.{" "}
          <button type="button" class="link" onClick={() => setMoving(null)}>
            Stop moving
          </button>
        </Alert>
      ) : null}
      {choosing && practitioner ? (
        <Book
          slot={choosing}
          practitioner={practitioner}
          kind={kind}
          patientId={patientId}
          done={(appointment) => {
            refresh(`Booked ${day(localDate(appointment.start, zone))} at ${time(appointment.start, zone)}.`);
            patientName(appointment.patientId);
          }}
          cancel={() => setChoosing(null)}
          taken={() => {
            setChoosing(null);
            setReload((n) => n + 1);
          }}
        />
      ) : null}
      <div class={`calendar ${view}`}>
        {days.map((d) => (
          <DayColumn
            date={d}
            zone={zone}
            slots={slots.filter((s) => localDate(s.start, zone) === d)}
            booked={booked.filter((a) => localDate(a.start, zone) === d)}
            pick={pick}
            changed={refresh}
            move={(a) => {
              setMoving(a);
              setNotice("");
            }}
            go={go}
            compact={view === "week"}
          />
        ))}
      </div>
    </section>
  );
}

function DayColumn(p: {
  date: string;
  zone: string;
  slots: Slot[];
  booked: Appointment[];
  pick: (slot: Slot) => void;
  changed: (message: string) => void;
  move: (a: Appointment) => void;
  go: Go;
  compact: boolean;
}) {
  const [showAll, setShowAll] = useState(false);
  const free = p.compact && !showAll ? p.slots.slice(0, 8) : p.slots;
  const appointments = [...p.booked].sort((a, b) => a.start.localeCompare(b.start));
  return (
    <section class="day-column" aria-labelledby={`day-${p.date}`}>
      <h2 id={`day-${p.date}`}>{day(p.date)}</h2>
      <h3>Booked</h3>
      {appointments.length ? (
        <ul class="booked">
          {appointments.map((a) => (
            <AppointmentItem appointment={a} zone={p.zone} changed={p.changed} move={p.move} go={p.go} />
          ))}
        </ul>
      ) : (
        <p class="muted">Nothing booked.</p>
      )}
      <h3>Free</h3>
      {free.length ? (
        <ul class="slots">
          {free.map((s) => (
            <li>
              <button type="button" class="slot" onClick={() => p.pick(s)}>
                <span class="sr-only">Free at </span>
                {time(s.start, p.zone)}
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">No free time.</p>
      )}
      {free.length < p.slots.length ? (
        <button type="button" class="link" onClick={() => setShowAll(true)}>
          Show all {p.slots.length} free times
        </button>
      ) : null}
    </section>
  );
}

const NEXT: Record<string, [string, string][]> = {
  booked: [
    ["check-in", "Check in"],
    ["no-show", "No-show"],
  ],
  checked_in: [["complete", "Complete"]],
};

export function AppointmentItem(p: {
  appointment: Appointment;
  zone: string;
  changed: (message: string) => void;
  move?: (a: Appointment) => void;
  go: Go;
  showZone?: boolean;
  practitionerName?: string;
}) {
  const a = p.appointment;
  const [problem, setProblem] = useState<Problem | null>(null);
  const [cancelling, setCancelling] = useState(false);
  const [reason, setReason] = useState("");
  const [reasonError, setReasonError] = useState<string | undefined>();
  const act = async (action: string, body?: unknown) => {
    try {
      await post(`/api/appointments/${a.id}/${action}`, body, `"${a.version}"`);
      p.changed(action === "cancel" ? "Cancelled." : "Saved.");
    } catch (err) {
      setProblem(err as Problem);
    }
  };
  return (
    <li class={`appointment ${a.status}`}>
      <div>
        <strong>
          {time(a.start, p.zone)}–{time(a.end, p.zone)}
        </strong>{" "}
        {p.showZone ? <span class="zone">{p.zone}</span> : null}{" "}
        {p.practitionerName ? <span class="practitioner">{p.practitionerName}: </span> : null}
        <button type="button" class="link" onClick={() => p.go({ name: "patient", id: a.patientId })}>
          <PatientName id={a.patientId} />
        </button>{" "}
        <span class={`status ${a.status}`}>{a.status.replace("_", " ")}</span>
        {a.type ? <span class="muted"> · {a.type}</span> : null}
      </div>
      <ProblemAlert problem={problem} />
      <div class="actions small">
        {(NEXT[a.status] ?? []).map(([action, label]) => (
          <button type="button" class="secondary" onClick={() => void act(action)}>
            {label}
          </button>
        ))}
        {a.status === "booked" && p.move ? (
          <button type="button" class="secondary" onClick={() => p.move?.(a)}>
            Reschedule
          </button>
        ) : null}
        {a.status === "booked" ? (
          <button type="button" class="secondary" onClick={() => setCancelling(true)}>
            Cancel…
          </button>
        ) : null}
      </div>
      {cancelling ? (
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            if (!reason.trim()) setReasonError("Say why it is cancelled.");
            else void act("cancel", { reason: reason.trim() });
          }}
        >
          <Field label="Reason for cancelling" value={reason} onInput={setReason} error={reasonError} required />
          <button type="submit" class="danger">
            Cancel the appointment
          </button>
          <button type="button" class="secondary" onClick={() => setCancelling(false)}>
            Keep it
          </button>
        </form>
      ) : null}
    </li>
  );
}

/** Booking a chosen free time: the patient (found as you type), and a reason. */
function Book(p: {
  slot: Slot;
  practitioner: Practitioner;
  kind: string;
  patientId?: string;
  done: (a: Appointment) => void;
  cancel: () => void;
  taken: () => void;
}) {
  const [patient, setPatient] = useState<{ id: string; name: string } | null>(null);
  const [text, setText] = useState("");
  const [found, setFound] = useState<PatientSummary[]>([]);
  const [reason, setReason] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [patientError, setPatientError] = useState<string | undefined>();
  const zone = p.practitioner.timeZone;
  // The panel opens above the calendar: move the focus into it, so a keyboard user goes on
  // from the free time they chose to the booking's first field.
  const panel = useRef<HTMLFormElement>(null);
  useEffect(() => panel.current?.querySelector<HTMLElement>("input, button")?.focus(), []);

  useEffect(() => {
    if (p.patientId) void patientName(p.patientId).then((name) => setPatient({ id: p.patientId!, name }));
  }, [p.patientId]);

  useEffect(() => {
    const filter = filterOf(text);
    if (!Object.keys(filter).length) return setFound([]);
    const timer = window.setTimeout(() => {
      post<{ patients: PatientSummary[] }>("/api/patients/search", { ...filter, limit: 8 })
        .then((a) => setFound(a.data.patients.filter((x) => x.active)))
        .catch(() => setFound([]));
    }, 60);
    return () => window.clearTimeout(timer);
  }, [text]);

  const book = async (e: Event) => {
    e.preventDefault();
    if (!patient) {
      setPatientError("Choose the patient first.");
      return;
    }
    try {
      const answer = await post<Appointment>("/api/appointments", {
        patientId: patient.id,
        practitionerId: p.practitioner.id,
        start: p.slot.start,
        type: p.kind,
        reason: reason.trim() || undefined,
      });
      p.done(answer.data);
    } catch (err) {
      const problem = err as Problem;
      setProblem(problem);
      if (problem.status === 409) window.setTimeout(p.taken, 2500);
    }
  };

  return (
    <form class="panel" onSubmit={book} aria-labelledby="book-title" ref={panel}>
      <h2 id="book-title">
        Book {day(localDate(p.slot.start, zone))} at {time(p.slot.start, zone)} with {p.practitioner.name}
      </h2>
      <ProblemAlert problem={problem} />
      {patient ? (
        <p>
          Patient: <strong>{patient.name}</strong>{" "}
          <button type="button" class="link" onClick={() => setPatient(null)}>
            Change
          </button>
        </p>
      ) : (
        <>
          <Field label="Patient (name, MRN, phone…)" value={text} onInput={setText} error={patientError} required />
          {found.length ? (
            <ul class="results compact" aria-label="Matching patients">
              {found.map((f) => (
                <li>
                  <button
                    type="button"
                    class="result"
                    onClick={() => {
                      setPatient({ id: f.id, name: `${f.familyName}, ${f.givenName}` });
                      setPatientError(undefined);
                    }}
                  >
                    {f.familyName}, {f.givenName} · born {f.birthDate} · MRN {f.mrn}
                  </button>
                </li>
              ))}
            </ul>
          ) : null}
        </>
      )}
      <Field label="Reason (optional)" value={reason} onInput={setReason} />
      <div class="actions">
        <button type="submit">Book</button>
        <button type="button" class="secondary" onClick={p.cancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
