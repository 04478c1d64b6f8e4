// The svd-studio page, laid out like Gradio's image-to-video demos: the image, its crop and the
// settings on the left with Generate below them; the video, its progress and the queue on the
// right (kept in view while the left side scrolls); the history underneath.
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, AuthError, cancelJob, continueJob, connectSocket, ensureMediaCookie, fetchInput, login, rerunJob, submitJob, type Health, type Job, type JobSocket } from './api.js';
import { autoDecodeChunk, defaultValues, fromSettings, toSettings, validate, type Framing, type FormValues } from './form.js';
import { History } from './history.js';
import { ImageInput } from './image-input.js';
import { JobPanel } from './job-panel.js';
import { Login } from './login.js';
import { loadCurrentJob, loadForm, loadImage, saveCurrentJob, saveForm, saveImage } from './persist.js';
import { SettingsForm } from './settings-form.js';
import { Variations, variationsOf } from './variations.js';

const CENTRED: Framing = { mode: 'crop', x: 0.5, y: 0.5 };
const isActive = (j: Job) => j.status === 'queued' || j.status === 'running';

/** A form size as a number the crop preview can draw (the last valid one while a field is being typed). */
function usableSide(text: string, fallback: number): number {
  const n = Number(text);
  return Number.isInteger(n) && n >= 64 && n <= 2048 && n % 64 === 0 ? n : fallback;
}

export function App() {
  const saved = useMemo(loadForm, []);
  const [health, setHealth] = useState<Health>();
  const [needLogin, setNeedLogin] = useState<string | false>(false);
  const [connected, setConnected] = useState(true);
  const [file, setFile] = useState<File>();
  const [framing, setFraming] = useState<Framing>(saved?.framing ?? CENTRED);
  const [values, setValues] = useState<FormValues | undefined>(saved?.values);
  const [jobs, setJobs] = useState<Job[]>([]);
  const [currentId, setCurrentId] = useState<string | undefined>(loadCurrentJob);
  const [previews, setPreviews] = useState<Record<string, string>>({});
  const [message, setMessage] = useState<string>();
  const [submitting, setSubmitting] = useState(false);
  const busy = useRef(false);
  const socket = useRef<JobSocket | undefined>(undefined);
  const watched = useRef(new Set<string>());
  const output = useRef<HTMLElement>(null);

  const refreshJobs = useCallback(
    () =>
      api<Job[]>('jobs')
        .then(setJobs)
        .catch(() => {}),
    [],
  );
  const upsert = useCallback((j: Job) => setJobs((list) => (list.some((x) => x.id === j.id) ? list.map((x) => (x.id === j.id ? j : x)) : [j, ...list])), []);

  const start = useCallback(async () => {
    try {
      const h = await api<Health>('health');
      await ensureMediaCookie();
      setHealth(h);
      setNeedLogin(false);
      // The form of the last visit, unless it names a model that is gone; else this server's defaults.
      setValues((v) => (v && (!v.model || h.models.some((m) => m.name === v.model)) ? v : defaultValues(h.models[0])));
      void refreshJobs();
    } catch (err) {
      if (err instanceof AuthError) setNeedLogin('');
      else setMessage((err as Error).message);
    }
  }, [refreshJobs]);

  useEffect(() => {
    void start();
    void loadImage().then((f) => f && setFile((current) => current ?? f));
  }, [start]);

  useEffect(() => {
    if (values) saveForm(values, framing);
  }, [values, framing]);

  const watch = useCallback(
    (id: string) => {
      watched.current.add(id);
      socket.current?.emit('watch', id, (r) => r.job && upsert(r.job));
    },
    [upsert],
  );

  // While the model loads (at start, or a worker reloading after a cancel or a crash) the status
  // is asked again every 2 s, so the page says "ready" without a reload.
  const settled = health?.status === 'ready' || health?.status === 'error';
  useEffect(() => {
    if (!health || settled) return;
    const timer = setInterval(() => {
      void api<Health>('health')
        .then(setHealth)
        .catch(() => {});
    }, 2000);
    return () => clearInterval(timer);
  }, [health, settled]);

  // One socket for the page (not a new one each time the status is read again); every
  // (re)connect watches again the jobs it follows.
  const haveHealth = !!health;
  useEffect(() => {
    if (!haveHealth) return;
    const s = connectSocket();
    socket.current = s;
    s.on('connect', () => {
      setConnected(true);
      const current = loadCurrentJob();
      if (current) watched.current.add(current);
      for (const id of watched.current) watch(id);
      void refreshJobs();
    });
    s.on('disconnect', () => setConnected(false));
    s.on('connect_error', (e) => {
      setConnected(false);
      if (/token/.test(e.message)) setNeedLogin('');
    });
    s.on('job', upsert);
    s.on('preview', (p) => setPreviews((all) => ({ ...all, [p.id]: p.url })));
    let timer: ReturnType<typeof setTimeout> | undefined;
    s.on('history', () => {
      clearTimeout(timer);
      timer = setTimeout(refreshJobs, 300);
    });
    return () => {
      clearTimeout(timer);
      s.close();
    };
  }, [haveHealth, refreshJobs, upsert, watch]);

  // Every queued or running job is followed, so its progress shows even when another is open.
  useEffect(() => {
    for (const j of jobs) if (isActive(j) && !watched.current.has(j.id)) watch(j.id);
  }, [jobs, watch]);

  const open = (id: string) => {
    setCurrentId(id);
    saveCurrentJob(id);
    watch(id);
  };

  const gpuFree = health?.gpu ? health.gpu.memoryTotalMiB - health.gpu.memoryUsedMiB : undefined;
  const autoChunk = values ? autoDecodeChunk(values, gpuFree) : 8;
  const errors = useMemo(() => (values ? validate(values, framing, autoChunk) : {}), [values, framing, autoChunk]);
  const current = jobs.find((j) => j.id === currentId);
  const others = jobs.filter((j) => isActive(j) && j.id !== currentId).reverse();
  const width = usableSide(values?.width ?? '', 1024);
  const height = usableSide(values?.height ?? '', 576);

  const blockers = [
    !file && 'Add an image first: drop it on the left, paste it, or choose one.',
    ...Object.values(errors),
    health?.status === 'error' && `The model could not be loaded: ${health.error}`,
  ].filter((b): b is string => !!b);
  const canRun = !!values && !!health && blockers.length === 0;

  const chooseFile = (f: File) => {
    setFile(f);
    saveImage(f);
    setFraming((fr) => ({ ...fr, x: 0.5, y: 0.5 }));
    setMessage(undefined);
  };

  const showOutput = () =>
    requestAnimationFrame(() => {
      const el = output.current;
      if (!el) return;
      const top = el.getBoundingClientRect().top;
      if (top < 0 || top > window.innerHeight - 120) el.scrollIntoView({ block: 'start' });
    });

  const run = async () => {
    // A second click while the first is being sent must not queue the job twice.
    if (busy.current || !file || !values || !canRun) return;
    busy.current = true;
    setSubmitting(true);
    setMessage(undefined);
    const previous = currentId;
    setCurrentId(undefined);
    showOutput();
    try {
      const { id } = await submitJob(file, file.name, toSettings(values, framing, autoChunk));
      open(id);
      void refreshJobs();
    } catch (err) {
      setCurrentId(previous);
      setMessage((err as Error).message);
    } finally {
      busy.current = false;
      setSubmitting(false);
    }
  };

  const continueFrom = (job: Job) =>
    void continueJob(job.id).then(
      (r) => {
        open(r.id);
        showOutput();
        void refreshJobs();
      },
      (e: Error) => setMessage(e.message),
    );

  const loadJob = async (job: Job) => {
    setValues(fromSettings(job.settings, job.seed));
    setFraming({ mode: job.settings.resize, x: job.settings.cropX, y: job.settings.cropY });
    try {
      const f = await fetchInput(job.id);
      setFile(f);
      saveImage(f);
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
          {health
            ? `${health.model.demo ? 'Demo model (random weights: the video is noise)' : health.model.path.split('/').pop()} · ${health.status === 'ready' ? health.provider : health.status}${health.gpu ? ` · ${health.gpu.name}` : ''}`
            : 'connecting…'}
        </p>
        {!connected && (
          <p class="banner" role="status" data-testid="offline">
            Connection lost — reconnecting… your jobs keep running on the server.
          </p>
        )}
        {!health && message && (
          <p class="error" role="alert">
            {message}
          </p>
        )}
        {health?.error && <p class="error">{health.error}</p>}
        {health && !health.ffmpeg.ok && <p class="error">{health.ffmpeg.error}</p>}
      </header>
      <div class="layout">
        <div class="inputs">
          <ImageInput file={file} onFile={chooseFile} width={width} height={height} framing={framing} onFraming={setFraming} />
          {values && health && (
            <SettingsForm
              values={values}
              errors={errors}
              onChange={(v) => {
                setValues(v);
                setMessage(undefined);
              }}
              models={health.models}
              lastSeed={jobs.find((j) => j.seed !== undefined)?.seed}
              autoChunk={autoChunk}
              canSave={health.saveDir}
            >
              <div class="run">
                <button type="button" class="primary" disabled={!canRun || submitting} aria-describedby="run-summary" onClick={run} data-testid="run">
                  {submitting ? 'Sending…' : 'Generate video'}
                </button>
                <div id="run-summary" class="run-summary" data-testid="run-summary" aria-live="polite">
                  {blockers.length > 0 ? (
                    <ul class="blockers">
                      {blockers.map((b) => (
                        <li key={b}>{b}</li>
                      ))}
                    </ul>
                  ) : (
                    <small>{`${width}×${height}, ${values.frames} frames, ${values.steps} steps${health.model.demo ? ' on the demo model' : ''}`}</small>
                  )}
                  {message && (
                    <p class="error" role="alert" data-testid="run-error">
                      {message}
                    </p>
                  )}
                </div>
              </div>
            </SettingsForm>
          )}
        </div>
        <JobPanel
          panelRef={output}
          job={current}
          pending={submitting}
          preview={currentId ? previews[currentId] : undefined}
          others={others}
          aspect={width / height}
          onOpen={open}
          onCancel={(id) => void cancelJob(id).then(upsert, (e: Error) => setMessage(e.message))}
          onRerun={(job) =>
            void rerunJob(job.id).then(
              (r) => {
                open(r.id);
                void refreshJobs();
              },
              (e: Error) => setMessage(e.message),
            )
          }
          onLoad={(job) => void loadJob(job)}
          onContinue={continueFrom}
        />
      </div>
      <Variations jobs={variationsOf(current, jobs)} current={currentId} onOpen={open} onContinue={continueFrom} />
      <History jobs={jobs} current={currentId} onOpen={open} />
    </main>
  );
}
