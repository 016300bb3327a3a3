// Admin: the staff who use pms and their roles. Create a user; change roles, name, enabled.
import { useState } from "preact/hooks";
import { Problem, post, send } from "../api";
import { Alert, Field, Heading, ProblemAlert, useGet } from "../ui";

interface StaffUser {
  id: string;
  email: string;
  displayName: string;
  roles: string[];
  enabled: boolean;
}

const ROLES = ["receptionist", "clinician", "billing", "analyst", "admin"];

function Roles(p: { legend: string; value: string[]; onChange: (roles: string[]) => void; error?: string }) {
  return (
    <fieldset class="roles" aria-describedby={p.error ? "roles-error" : undefined}>
      <legend>{p.legend}</legend>
      {ROLES.map((r) => (
        <label class="check">
          <input
            type="checkbox"
            checked={p.value.includes(r)}
            onChange={(e) =>
              p.onChange(e.currentTarget.checked ? [...p.value, r] : p.value.filter((x) => x !== r))
            }
          />
          {r}
        </label>
      ))}
      {p.error ? (
        <p class="field-error" id="roles-error">
          {p.error}
        </p>
      ) : null}
    </fieldset>
  );
}

export function Users() {
  const [notice, setNotice] = useState("");
  const [reload, setReload] = useState(0);
  const { data, problem } = useGet<{ users: StaffUser[] }>("/api/users?limit=100", reload);
  const users = data?.users;
  const changed = (message: string) => {
    setNotice(message);
    setReload((n) => n + 1);
  };
  return (
    <section>
      <Heading>Users</Heading>
      <ProblemAlert problem={problem} />
      {notice ? <Alert kind="ok">{notice}</Alert> : null}
      <NewUser created={changed} />
      {users ? (
        <table>
          <caption>Staff with access to pms</caption>
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Name</th>
              <th scope="col">Roles</th>
              <th scope="col">Enabled</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <UserRow user={u} changed={changed} />
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

function UserRow({ user, changed }: { user: StaffUser; changed: (m: string) => void }) {
  const [editing, setEditing] = useState(false);
  const [roles, setRoles] = useState(user.roles);
  const [problem, setProblem] = useState<Problem | null>(null);
  const save = async (patch: Partial<StaffUser>) => {
    try {
      await send("PATCH", `/api/users/${user.id}`, patch);
      setEditing(false);
      changed(`${user.email} saved.`);
    } catch (err) {
      setProblem(err as Problem);
    }
  };
  return (
    <tr>
      <td>{user.email}</td>
      <td>{user.displayName}</td>
      <td>
        {editing ? (
          <Roles legend={`Roles of ${user.email}`} value={roles} onChange={setRoles} error={problem?.fields["/roles"]} />
        ) : (
          user.roles.join(", ")
        )}
        <ProblemAlert problem={problem} />
      </td>
      <td>{user.enabled ? "yes" : "no"}</td>
      <td class="actions small">
        {editing ? (
          <>
            <button type="button" onClick={() => void save({ roles })}>
              Save roles
            </button>
            <button type="button" class="secondary" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </>
        ) : (
          <>
            <button type="button" class="secondary" onClick={() => setEditing(true)}>
              Change roles<span class="sr-only"> of {user.email}</span>
            </button>
            <button type="button" class="secondary" onClick={() => void save({ enabled: !user.enabled })}>
              {user.enabled ? "Disable" : "Enable"}
              <span class="sr-only"> {user.email}</span>
            </button>
          </>
        )}
      </td>
    </tr>
  );
}

function NewUser({ created }: { created: (m: string) => void }) {
  const [open, setOpen] = useState(false);
  const [email, setEmail] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [password, setPassword] = useState("");
  const [roles, setRoles] = useState<string[]>(["receptionist"]);
  const [problem, setProblem] = useState<Problem | null>(null);
  if (!open) {
    return (
      <button type="button" onClick={() => setOpen(true)}>
        Add a user
      </button>
    );
  }
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      await post("/api/users", { email: email.trim(), displayName: displayName.trim(), password, roles });
      setOpen(false);
      created(`${email.trim()} can now sign in.`);
    } catch (err) {
      setProblem(err as Problem);
    }
  };
  const f = problem?.fields ?? {};
  return (
    <form class="panel grid" onSubmit={submit} noValidate aria-labelledby="new-user-title">
      <h2 id="new-user-title" class="wide">
        Add a user
      </h2>
      <div class="wide">
        <ProblemAlert problem={problem} />
      </div>
      <Field label="Email" type="email" value={email} onInput={setEmail} error={f["/email"]} required />
      <Field label="Name" value={displayName} onInput={setDisplayName} error={f["/displayName"]} required />
      <Field
        label="First password"
        type="password"
        autoComplete="new-password"
        value={password}
        onInput={setPassword}
        error={f["/password"]}
        hint="At least 12 characters; the user should change it."
        required
      />
      <Roles legend="Roles" value={roles} onChange={setRoles} error={f["/roles"]} />
      <div class="actions wide">
        <button type="submit">Add the user</button>
        <button type="button" class="secondary" onClick={() => setOpen(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}
