// The access-token screen, shown when the server requires one.
export function Login({ onToken, error }: { onToken: (t: string) => void; error?: string }) {
  return (
    <main class="login">
      <h1>svd-studio</h1>
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          onToken(String(new FormData(e.target as HTMLFormElement).get('token') ?? ''));
        }}
      >
        <label for="token">Access token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required aria-describedby="token-msg" />
        <small id="token-msg" class={error ? 'error' : undefined}>
          {error ?? 'The server printed it when it started (or open the link that includes it).'}
        </small>
        <button type="submit">Open</button>
      </form>
    </main>
  );
}
