// The svd-studio page, laid out like Gradio's image-to-video demos: the image, its crop and the
// settings on the left with Generate below them; the video, its progress and the queue on the
// right (kept in view while the left side scrolls); the history underneath.
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { SETTINGS, type Framing } from '../../common/settings.js';
import type { WatchReply } from '../../common/socket-events.js';
import {
  api,
  AuthError,
  cancelJob,
  continueJob,
  connectSocket,
  deleteJob,
  ensureMediaCookie,
  fetchInput,
  HISTORY_PAGE,
  listJobs,
  login,
  rerunJob,
  submitJob,
  type Health,
  type Job,
  type JobSocket,
} from './api.js';
import { autoDecodeChunk, defaultValues, fromSettings, toSettings, validate, type FormValues } from './form.js';
import { Boxes } from './boxes.js';
import { History } from './history.js';
import { ImageInput } from './image-input.js';
import { JobPanel } from './job-panel.js';
import { Login } from './login.js';
import { loadCurrentJob, loadForm, loadImage, saveCurrentJob, saveForm, saveImage } from './persist.js';
import { SettingsForm } from './settings-form.js';
import { Variations, variationsOf } from './variations.js';

const CENTRED: Framing = { mode: 'crop', x: 0.5, y: 0.5 };
const isActive = (j: Job) => j.status === 'queued' || j.status === 'running';

/** What the server knows about a job the page lost track of, in the words the panel shows. */
function afterReconnect(r: WatchReply): string {
  if (!r.job) return `Reconnected, but the server no longer knows this job (${r.error}).`;
  switch (r.job.status) {
    case 'queued':
    case 'running':
      return 'Reconnected: the server is still working on this job.';
    case 'done':
      return 'Reconnected: the job finished while the page could not reach the server.';
    case 'interrupted':
      return 'Reconnected: the server was restarted and this job did not survive it.';
    default:
      return `Reconnected: the job is ${r.job.status}.`;
  }
}

/** A typed side as a number, when the settings' schema takes it. */
function validSide(side: 'width' | 'height', text: string): number | undefined {
  const r = SETTINGS[side].schema.safeParse(text.trim() === '' ? Number.NaN : Number(text));
  return r.success ? r.data : undefined;
}

export function App() {
  const saved = useMemo(loadForm, []);
  const [health, setHealth] = useState<Health>();
  const [needLogin, setNeedLogin] = useState<string | false>(false);
  const [connected, setConnected] = useState(true);
  /** What the server said about the open job once the page reached it again after losing it. */
  const [reconnectNote, setReconnectNote] = useState<{ id: string; status?: Job['status']; text: string }>();
  const [file, setFile] = useState<File>();
  const [framing, setFraming] = useState<Framing>(saved?.framing ?? CENTRED);
  /** The size the crop and its preview are drawn at: the last valid one while a side is being typed. */
  const drawnSize = useRef({ width: 1024, height: 576 });
  const [values, setValues] = useState<FormValues | undefined>(saved?.values);
  const [jobs, setJobs] = useState<Job[]>([]);
  const [moreHistory, setMoreHistory] = useState(false);
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
      listJobs()
        .then((page) => {
          setJobs(page);
          setMoreHistory(page.length === HISTORY_PAGE);
        })
        .catch(() => {}),
    [],
  );
  const loadOlder = () => {
    const last = jobs.at(-1);
    void listJobs(last?.id).then(
      (page) => {
        setJobs((list) => [...list, ...page.filter((j) => !list.some((x) => x.id === j.id))]);
        setMoreHistory(page.length === HISTORY_PAGE);
      },
      (e: Error) => setMessage(e.message),
    );
  };
  const upsert = useCallback((j: Job) => setJobs((list) => (list.some((x) => x.id === j.id) ? list.map((x) => (x.id === j.id ? j : x)) : [j, ...list])), []);
  const remove = (id: string) =>
    void deleteJob(id).then(
      () => setJobs((list) => list.filter((j) => j.id !== id)),
      (e: Error) => setMessage(e.message),
    );

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
    (id: string, onReply?: (r: WatchReply) => void) => {
      watched.current.add(id);
      socket.current?.emit('watch', id, (r) => {
        if (r.job) upsert(r.job);
        onReply?.(r);
      });
    },
    [upsert],
  );
  // The open job as it was when the connection went: after reconnecting, the page says what the
  // server knows about it now (still running, finished, or lost with a restart).
  const currentJob = useRef<Job | undefined>(undefined);
  const lostJob = useRef<Job | undefined>(undefined);

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
    const lost = () => {
      setConnected(false);
      if (!lostJob.current && currentJob.current && isActive(currentJob.current)) lostJob.current = currentJob.current;
    };
    s.on('connect', () => {
      setConnected(true);
      // A restarted server may still be loading its model: Generate waits for it.
      void api<Health>('health')
        .then(setHealth)
        .catch(() => {});
      const current = loadCurrentJob();
      if (current) watched.current.add(current);
      const before = lostJob.current;
      lostJob.current = undefined;
      for (const id of watched.current) watch(id, id === before?.id ? (r) => setReconnectNote({ id, status: r.job?.status, text: afterReconnect(r) }) : undefined);
      void refreshJobs();
    });
    s.on('disconnect', lost);
    s.on('connect_error', (e) => {
      lost();
      if (/token/.test(e.message)) setNeedLogin('');
    });
    s.on('job', upsert);
    s.on('preview', (p) => setPreviews((all) => ({ ...all, [p.id]: p.url })));
    // Each event carries the job that changed, so the history is updated in place, never fetched again.
    s.on('history', (e) => {
      if (e.removed) setJobs((list) => list.filter((j) => j.id !== e.id));
      else upsert(e.job);
    });
    return () => {
      s.close();
    };
  }, [haveHealth, refreshJobs, upsert, watch]);

  // Every queued or running job is followed, so its progress shows even when another is open.
  useEffect(() => {
    for (const j of jobs) if (isActive(j) && !watched.current.has(j.id)) watch(j.id);
  }, [jobs, watch]);

  const open = (id: string) => {
    setReconnectNote(undefined);
    setCurrentId(id);
    saveCurrentJob(id);
    watch(id);
  };

  const gpuFree = health?.gpu ? health.gpu.memoryTotalMiB - health.gpu.memoryUsedMiB : undefined;
  const typedWidth = validSide('width', values?.width ?? '');
  const typedHeight = validSide('height', values?.height ?? '');
  if (typedWidth && typedHeight) drawnSize.current = { width: typedWidth, height: typedHeight };
  const { width, height } = drawnSize.current;
  const autoChunk = values ? autoDecodeChunk(values, gpuFree) : 8;
  const errors = useMemo(() => (values ? validate(values, framing, autoChunk) : {}), [values, framing, autoChunk]);
  const current = jobs.find((j) => j.id === currentId);
  currentJob.current = current;
  const others = jobs.filter((j) => isActive(j) && j.id !== currentId).reverse();
  // While a side is wrong the preview keeps the last valid size and says so instead of claiming it.
  const sizeProblem = errors.width ?? errors.height;

  const blockers = [
    !file && 'Add an image first: drop it on the left, paste it, or choose one.',
    ...Object.values(errors),
    health?.status === 'error' && `The model could not be loaded: ${health.error}`,
    !connected && 'The server cannot be reached; Generate comes back when it answers again.',
  ].filter((b): b is string => !!b);
  const saveFolder = health?.saveDirOnDrive ? 'the Drive folder' : 'the save folder';
  const canRun = !!values && !!health && blockers.length === 0;

  const chooseFile = (f: File) => {
    setFile(f);
    saveImage(f);
    setFraming((fr) => ({ ...fr, x: 0.5, y: 0.5 }));
    setMessage(undefined);
  };

  // A saved image this browser can no longer show (an older page's, or a format it dropped) is not
  // kept: Generate would send a file the page cannot show.
  const forgetFile = (f: File) => {
    setFile((current) => {
      if (current !== f) return current;
      saveImage(undefined);
      return undefined;
    });
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
    setFraming(job.settings.framing);
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
        {!health && message && (
          <p class="error" role="alert">
            {message}
          </p>
        )}
        {health?.boxes && <Boxes initial={health.boxes} />}
        {health?.error && <p class="error">{health.error}</p>}
        {health && !health.ffmpeg.ok && <p class="error">{health.ffmpeg.error}</p>}
      </header>
      <div class="layout">
        <div class="inputs">
          <ImageInput file={file} onFile={chooseFile} onUnreadable={forgetFile} width={width} height={height} sizeProblem={sizeProblem} framing={framing} onFraming={setFraming} />
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
              autoFromGpu={gpuFree !== undefined}
              canSave={health.saveDir}
              saveFolder={saveFolder}
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
          offline={!connected}
          saveFolder={saveFolder}
          lastVideo={jobs.find((j) => j.status === 'done' && j.id !== currentId)}
          note={reconnectNote && reconnectNote.id === currentId && reconnectNote.status === current?.status ? reconnectNote.text : undefined}
          preview={currentId ? previews[currentId] : undefined}
          others={others}
          aspect={width / height}
          onOpen={open}
          onCancel={(id) => {
            if (connected) void cancelJob(id).then(upsert, (e: Error) => setMessage(e.message));
          }}
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
      <History jobs={jobs} current={currentId} onOpen={open} onDelete={remove} more={moreHistory} onMore={loadOlder} shared={!!health?.sharedHistory} />
    </main>
  );
}
