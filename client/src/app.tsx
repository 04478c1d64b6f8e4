// The svd-studio page: image and crop, settings, run with live progress, results and history.
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Socket } from 'socket.io-client';
import { api, AuthError, connectSocket, ensureMediaCookie, login, submitJob, type Health, type Job } from './api.js';
import { ImageInput, type Framing } from './image-input.js';
import { History, JobPanel, Login } from './job-panel.js';
import { autoDecodeChunk, defaultValues, SettingsForm, toSettings, validate, type FormValues } from './settings-form.js';

const CURRENT_KEY = 'svd-studio-current-job';

export function App() {
  const [health, setHealth] = useState<Health>();
  const [needLogin, setNeedLogin] = useState<string | false>(false);
  const [connected, setConnected] = useState(true);
  const [file, setFile] = useState<File>();
  const [framing, setFraming] = useState<Framing>({ mode: 'crop', x: 0.5, y: 0.5 });
  const [values, setValues] = useState<FormValues>(defaultValues(25));
  const [jobs, setJobs] = useState<Job[]>([]);
  const [currentId, setCurrentId] = useState<string | undefined>(localStorage.getItem(CURRENT_KEY) ?? undefined);
  const [preview, setPreview] = useState<string>();
  const [message, setMessage] = useState<string>();
  const [model, setModel] = useState<string>();
  const socket = useRef<Socket | undefined>(undefined);
  const currentRef = useRef(currentId);
  currentRef.current = currentId;

  const refreshJobs = useCallback(() => api<Job[]>('jobs').then(setJobs).catch(() => {}), []);

  const start = useCallback(async () => {
    try {
      const h = await api<Health>('health');
      await ensureMediaCookie();
      setHealth(h);
      setNeedLogin(false);
      if (h.model.frames) setValues((v) => (v === initial.current ? defaultValues(h.model.frames!) : v));
      void refreshJobs();
    } catch (err) {
      if (err instanceof AuthError) setNeedLogin('');
      else setMessage((err as Error).message);
    }
  }, [refreshJobs]);
  const initial = useRef(values);

  useEffect(() => {
    void start();
  }, [start]);

  // One socket for the page; every (re)connect asks for the current job's full snapshot.
  useEffect(() => {
    if (!health) return;
    const s = connectSocket();
    socket.current = s;
    const watch = () => {
      const id = currentRef.current;
      if (id) s.emit('watch', id, (r: { job?: Job }) => r.job && upsert(r.job));
    };
    const upsert = (j: Job) => setJobs((list) => (list.some((x) => x.id === j.id) ? list.map((x) => (x.id === j.id ? j : x)) : [j, ...list]));
    s.on('connect', () => {
      setConnected(true);
      watch();
      void refreshJobs();
    });
    s.on('disconnect', () => setConnected(false));
    s.on('connect_error', (e) => {
      setConnected(false);
      if (/token/.test(e.message)) setNeedLogin('');
    });
    s.on('job', (j: Job) => upsert(j));
    s.on('preview', (p: { id: string; url: string }) => p.id === currentRef.current && setPreview(p.url));
    let timer: ReturnType<typeof setTimeout> | undefined;
    s.on('history', () => {
      clearTimeout(timer);
      timer = setTimeout(refreshJobs, 300);
    });
    return () => s.close();
  }, [health, refreshJobs]);

  const open = (id: string) => {
    if (currentRef.current) socket.current?.emit('unwatch', currentRef.current);
    setCurrentId(id);
    currentRef.current = id;
    localStorage.setItem(CURRENT_KEY, id);
    setPreview(undefined);
    socket.current?.emit('watch', id, (r: { job?: Job }) => r.job && setJobs((list) => (list.some((x) => x.id === id) ? list.map((x) => (x.id === id ? r.job! : x)) : [r.job!, ...list])));
  };

  const gpuFree = health?.gpu ? health.gpu.memoryTotalMiB - health.gpu.memoryUsedMiB : undefined;
  const autoChunk = autoDecodeChunk(values.frames, gpuFree, values.width * values.height);
  const errors = useMemo(() => validate(values, autoChunk), [values, autoChunk]);
  const current = jobs.find((j) => j.id === currentId);
  const canRun = !!file && Object.keys(errors).length === 0 && health?.status !== 'error';

  const run = async () => {
    if (!file) return;
    setMessage(undefined);
    try {
      const settings = { ...toSettings(values, autoChunk), resize: framing.mode, cropX: framing.x, cropY: framing.y, formats: values.formats, saveToFolder: values.saveToFolder, ...(model ? { model } : {}) };
      const { id } = await submitJob(file, file.name, settings);
      open(id);
      void refreshJobs();
    } catch (err) {
      setMessage((err as Error).message);
    }
  };

  if (needLogin !== false)
    return (
      <Login
        error={needLogin || undefined}
        onToken={(t) =>
          login(t).then(
            () => start(),
            (e: Error) => setNeedLogin(e.message),
          )
        }
      />
    );

  return (
    <main>
      <header>
        <h1>svd-studio</h1>
        <p class="muted" data-testid="status">
          {health ? `${health.model.demo ? 'DEMO model (random weights: output is noise)' : health.model.path.split('/').pop()} · ${health.status === 'ready' ? health.provider : health.status}${health.gpu ? ` · ${health.gpu.name}` : ''}` : 'connecting…'}
        </p>
        {!connected && (
          <p class="banner" role="status" data-testid="offline">
            Connection lost — reconnecting… your jobs keep running on the server.
          </p>
        )}
        {health?.error && <p class="error">{health.error}</p>}
        {health && !health.ffmpeg.ok && <p class="error">{health.ffmpeg.error}</p>}
      </header>
      <div class="layout">
        <div>
          <ImageInput file={file} onFile={setFile} width={values.width || 64} height={values.height || 64} framing={framing} onFraming={setFraming} />
          <section class="card">
            <label for="model">Model</label>
            <select
              id="model"
              value={model ?? health?.models[0]?.name}
              onChange={(e) => {
                const name = (e.target as HTMLSelectElement).value;
                setModel(name);
                const frames = health?.models.find((m) => m.name === name)?.frames;
                if (frames) setValues((v) => ({ ...v, frames }));
              }}
            >
              {health?.models.map((m) => (
                <option key={m.name} value={m.name}>
                  {modelLabel(m)}
                </option>
              ))}
              {!health?.models.some((m) => m.frames === 25 && !m.demo) && <option disabled>SVD-XT (25 frames): not installed</option>}
              {!health?.models.some((m) => m.frames === 14 && !m.demo) && <option disabled>SVD (14 frames): not installed</option>}
            </select>
            <small> {health && health.models.length > 1 ? 'switching models reloads the GPU (a minute or so)' : 'install more with npm run setup -- --model svd'}</small>
          </section>
          <SettingsForm values={values} errors={errors} onChange={setValues} lastSeed={jobs.find((j) => j.seed !== undefined)?.seed} autoChunk={autoChunk} canSave={!!health?.saveDir} />
          <div class="run">
            <button type="button" class="primary" disabled={!canRun} onClick={run} data-testid="run">
              Generate video
            </button>
            {!file && <small>Add an image first.</small>}
            {message && <p class="error" role="alert">{message}</p>}
          </div>
        </div>
        <div>
          {current && (
            <JobPanel
              job={current}
              preview={preview}
              onCancel={() => api(`jobs/${current.id}`, { method: 'DELETE' }).catch((e: Error) => setMessage(e.message))}
              onRerun={() => api<{ id: string }>(`jobs/${current.id}/rerun`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then((r) => open(r.id), (e: Error) => setMessage(e.message))}
              onUseSettings={() => setValues((v) => ({ ...v, ...pickForm(current.settings), seed: current.seed !== undefined ? String(current.seed) : v.seed }))}
            />
          )}
          <History jobs={jobs} current={currentId} onOpen={open} />
        </div>
      </div>
    </main>
  );
}

function modelLabel(m: { name: string; demo: boolean; frames: number }): string {
  if (m.demo) return `Demo model (${m.frames} frames, random weights)`;
  return m.frames === 25 ? `SVD-XT (25 frames) · ${m.name}` : m.frames === 14 ? `SVD (14 frames) · ${m.name}` : `${m.name} (${m.frames} frames)`;
}

function pickForm(s: Record<string, unknown>): Partial<FormValues> {
  const out: Partial<FormValues> = {};
  for (const k of ['width', 'height', 'frames', 'steps', 'motionBucket', 'fps', 'noiseAug', 'minGuidance', 'maxGuidance'] as const) if (typeof s[k] === 'number') out[k] = s[k] as number;
  if (Array.isArray(s.formats)) out.formats = s.formats as string[];
  if (typeof s.decodeChunk === 'number') out.decodeChunk = String(s.decodeChunk);
  return out;
}
