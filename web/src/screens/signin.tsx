// Sign-in: email and password against the auth service. Also shown as a dialog over the
// current screen when the session ends, so a half-filled form survives.
import { useState } from "preact/hooks";
import { Problem, signIn } from "../api";
import { Alert, Field, Heading } from "../ui";

export function SignIn({ email: known }: { email?: string }) {
  const [email, setEmail] = useState(known ?? "");
  const [password, setPassword] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setProblem(null);
    try {
      await signIn(email.trim(), password);
    } catch (err) {
      setProblem(err instanceof Problem ? err : new Problem(0, "Sign-in failed", String(err), {}));
      setBusy(false);
    }
  };

  const message =
    problem?.status === 401
      ? "The email or the password is wrong."
      : problem?.status === 429
        ? "Too many attempts: wait a few minutes, then try again."
        : problem?.message;

  return (
    <form class="signin" onSubmit={submit} aria-busy={busy}>
      {known ? null : <Heading>Sign in to pms</Heading>}
      {problem ? <Alert>{message}</Alert> : null}
      <Field label="Email" type="email" autoComplete="username" value={email} onInput={setEmail} required />
      <Field
        label="Password"
        type="password"
        autoComplete="current-password"
        value={password}
        onInput={setPassword}
        required
      />
      <button type="submit" disabled={busy}>
        {busy ? "Signing in…" : "Sign in"}
      </button>
    </form>
  );
}
