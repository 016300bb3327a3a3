// The shell: sign-in, the navigation the user's roles allow, and the current screen. Which
// screen and which patient are kept in memory; the address bar only ever names the screen
// (no patient data in URLs or history), and the document title only the screen's name.
import { useEffect, useRef, useState } from "preact/hooks";
import { hasRole, onExpired, onSession, signOut, user as currentUser, type User } from "./api";
import { Audit } from "./screens/audit";
import { Day } from "./screens/day";
import { PatientRecord } from "./screens/patient";
import { PatientForm, type Draft } from "./screens/patient-form";
import { Patients } from "./screens/patients";
import { SignIn } from "./screens/signin";
import { Heading } from "./ui";
import { Today } from "./screens/today";
import { Users } from "./screens/users";

export type Screen =
  | { name: "patients" }
  | { name: "patient"; id: string }
  | { name: "register"; draft?: Partial<Draft> }
  | { name: "day"; patientId?: string }
  | { name: "today" }
  | { name: "users" }
  | { name: "audit"; patientId?: string };

export type Go = (screen: Screen) => void;

interface NavItem {
  screen: Screen;
  label: string;
  allowed: () => boolean;
}

const staff = () => hasRole("receptionist", "clinician");
const NAV: NavItem[] = [
  { screen: { name: "patients" }, label: "Patients", allowed: staff },
  { screen: { name: "today" }, label: "Today", allowed: staff },
  { screen: { name: "day" }, label: "Calendar", allowed: staff },
  { screen: { name: "users" }, label: "Users", allowed: () => hasRole() },
  { screen: { name: "audit" }, label: "Audit trail", allowed: () => hasRole() },
];

const TITLES: Record<Screen["name"], string> = {
  patients: "Find a patient",
  patient: "Patient record",
  register: "Register a patient",
  day: "Calendar",
  today: "Today",
  users: "Users",
  audit: "Audit trail",
};

function first(): Screen {
  const item = NAV.find((n) => n.allowed());
  return item ? item.screen : { name: "patients" };
}

export function App() {
  const [user, setUser] = useState<User | null>(currentUser());
  const [expired, setExpired] = useState(false);
  const [screen, setScreen] = useState<Screen>({ name: "patients" });

  useEffect(
    () =>
      onSession((u) => {
        setUser(u);
        setExpired(false);
        if (!u) setScreen({ name: "patients" });
      }),
    [],
  );
  useEffect(() => onExpired(() => setExpired(true)), []);

  // Back and forward move between screens. The history entry holds the screen's name only;
  // which patient was open is remembered here, in memory.
  const lastPatient = useRef<string | null>(null);
  useEffect(() => {
    const back = (e: PopStateEvent) => {
      const name = (e.state?.screen as Screen["name"]) ?? "patients";
      setScreen((now) => {
        if (now.name === name) return now;
        if (name === "patient") return lastPatient.current ? { name, id: lastPatient.current } : now;
        return { name } as Screen;
      });
    };
    window.addEventListener("popstate", back);
    return () => window.removeEventListener("popstate", back);
  }, []);

  useEffect(() => {
    document.title = `${TITLES[screen.name]} · pms`;
  }, [screen.name]);

  const go: Go = (next) => {
    if (next.name === "patient") lastPatient.current = next.id;
    setScreen(next);
    history.pushState({ screen: next.name }, "", `#/${next.name}`);
  };

  useEffect(() => {
    if (user) {
      const start = first();
      setScreen(start);
      history.replaceState({ screen: start.name }, "", `#/${start.name}`);
    }
  }, [user?.id]);

  if (!user) {
    return (
      <main id="main" class="signin-page">
        <SignIn />
      </main>
    );
  }

  const allowed = NAV.filter((n) => n.allowed());
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">pms</span>
        {allowed.length ? (
          <nav aria-label="Main">
            <ul>
              {allowed.map((n) => (
                <li>
                  <a
                    href={`#/${n.screen.name}`}
                    aria-current={screen.name === n.screen.name ? "page" : undefined}
                    onClick={(e) => {
                      e.preventDefault();
                      go(n.screen);
                    }}
                  >
                    {n.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        ) : null}
        <span class="who">
          {user.email} <span class="roles">({user.roles.join(", ")})</span>
        </span>
        <button type="button" class="secondary" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {allowed.length ? <Current screen={screen} go={go} /> : <NoScreens roles={user.roles} />}
      </main>
      {expired ? (
        <div class="backdrop">
          <div role="dialog" aria-modal="true" aria-labelledby="expired-title" class="dialog">
            <h2 id="expired-title">Your session has ended</h2>
            <p>Sign in again to continue; what you typed is kept.</p>
            <SignIn email={user.email} />
          </div>
        </div>
      ) : null}
    </>
  );
}

/** A user whose roles open none of the screens: say so, and where their work is. */
function NoScreens({ roles }: { roles: string[] }) {
  return (
    <section>
      <Heading>Nothing here for your roles</Heading>
      <p>
        You are signed in with the roles <strong>{roles.join(", ") || "none"}</strong>. This screen is for the front
        desk, clinicians and administrators; your roles do not allow its patient and appointment screens.
      </p>
      <p>
        Billing staff and analysts use the API (see <a href="/docs">the API documentation</a>). If you need these
        screens, ask an administrator to add the receptionist or clinician role.
      </p>
    </section>
  );
}

function Current({ screen, go }: { screen: Screen; go: Go }) {
  switch (screen.name) {
    case "patients":
      return <Patients go={go} />;
    case "patient":
      return <PatientRecord key={screen.id} id={screen.id} go={go} />;
    case "register":
      return <PatientForm draft={screen.draft} go={go} />;
    case "day":
      return <Day go={go} patientId={screen.patientId} />;
    case "today":
      return <Today go={go} />;
    case "users":
      return <Users />;
    case "audit":
      return <Audit patientId={screen.patientId} />;
  }
}
