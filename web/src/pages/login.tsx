import { useState } from 'hono/jsx/dom'
import { api, ApiError } from '../api'
import { Hint } from '../components/hint'
import { capitalise } from '../lib/error-text'

/** The admin password form; the session cookie it sets survives server restarts. */
export function LoginPage({ onLogin }: { onLogin: () => void }) {
  const [password, setPassword] = useState('')
  const [error, setError] = useState<{ message: string; hint?: string } | null>(null)
  const [busy, setBusy] = useState(false)

  const submit = async (e: Event) => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await api.login(password)
      onLogin()
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setError({ message: 'Wrong password.' })
      else if (err instanceof ApiError) setError({ message: capitalise(err.message), ...(err.hint ? { hint: err.hint } : {}) })
      else setError({ message: 'Signing in failed.' })
      setBusy(false)
    }
  }

  return (
    <main class="login">
      <form class="card stack" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title" class="login-title">
          Sign in to Upkeep
        </h1>
        <div class="field">
          <label for="password">Admin password</label>
          <input
            id="password"
            type="password"
            autocomplete="current-password"
            required
            autofocus
            value={password}
            onInput={(e: Event) => setPassword((e.target as HTMLInputElement).value)}
            aria-describedby={error ? 'login-error' : 'login-help'}
          />
          <span class="help" id="login-help">
            Set at install; <code>upkeep set-password</code> on the server sets a new one.
          </span>
        </div>
        {error ? (
          <div class="notice error" id="login-error" role="alert">
            {error.message}
            {error.hint ? (
              <div>
                <Hint hint={error.hint} page="other" />
              </div>
            ) : null}
          </div>
        ) : null}
        <div>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </div>
      </form>
    </main>
  )
}
