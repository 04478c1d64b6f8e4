// Upload by drop, paste or picker; the crop window over the image (drag it, arrow keys, or the
// sliders); and a small preview of exactly what the model will see.
import { useEffect, useRef, useState } from 'preact/hooks';
import { cropWindow } from '../../common/framing.js';
import type { Framing } from './form.js';

interface Props {
  file: File | undefined;
  /** A file the user chose (dropped, pasted or picked), called only once it has decoded as an image. */
  onFile: (f: File) => void;
  /** The file given in `file` (restored after a reload, or loaded from a job) cannot be shown. */
  onUnreadable: (f: File) => void;
  width: number;
  height: number;
  framing: Framing;
  onFraming: (f: Framing) => void;
}

/** The file as an image element, or why it is not one this browser can show. */
function decode(file: File): Promise<HTMLImageElement> {
  const url = URL.createObjectURL(file);
  const el = new Image();
  return new Promise((resolve, reject) => {
    el.onload = () => resolve(el);
    el.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error(`${file.name} is not an image this browser can show; use a PNG, JPEG, WebP, AVIF or GIF file`));
    };
    el.src = url;
  });
}

/** The kept region in fractions of the source image, and how far it can move on each axis. */
function cropGeometry(img: HTMLImageElement, width: number, height: number, framing: Framing) {
  const w = cropWindow(img.naturalWidth, img.naturalHeight, width, height, framing.x, framing.y);
  const scale = w.coverW / img.naturalWidth;
  const win = { left: w.left / scale / img.naturalWidth, top: w.top / scale / img.naturalHeight, width: width / scale / img.naturalWidth, height: height / scale / img.naturalHeight };
  return { win, freeX: 1 - win.width, freeY: 1 - win.height };
}

const MOVABLE = 1e-3;

export function ImageInput({ file, onFile, onUnreadable, width, height, framing, onFraming }: Props) {
  // The image on screen and the file it came from: a file is checked here before it replaces
  // anything, so a file that cannot be shown never reaches the form, the saved image or Generate.
  const [shown, setShown] = useState<{ file: File; img: HTMLImageElement }>();
  const [error, setError] = useState<string>();
  const [dragging, setDragging] = useState(false);
  const picker = useRef<HTMLInputElement>(null);
  // Only the latest choice may land: a slow decode of an earlier file must not replace it.
  const latest = useRef(0);
  const img = shown?.img;
  // For the paste listener, which holds an older `take`.
  const hasImage = useRef(false);
  hasImage.current = !!shown;

  /** Shows `f` once it decodes; only the latest call lands (a slow decode of an earlier file must not replace it). */
  const load = (f: File, shown: () => void, refused: (message: string) => void) => {
    const ticket = ++latest.current;
    decode(f).then(
      (el) => {
        if (ticket !== latest.current) return URL.revokeObjectURL(el.src);
        setShown((old) => {
          if (old && old.img !== el) URL.revokeObjectURL(old.img.src);
          return { file: f, img: el };
        });
        shown();
      },
      (err: Error) => {
        if (ticket === latest.current) refused(err.message);
      },
    );
  };

  useEffect(() => {
    if (!file || file === shown?.file) return;
    load(
      file,
      () => setError(undefined),
      (message) => {
        setError(message);
        onUnreadable(file);
      },
    );
  }, [file]);

  const take = (files: FileList | null | undefined) => {
    const f = files?.[0];
    if (!f) return;
    setError(undefined);
    load(
      f,
      () => onFile(f),
      (message) => setError(`${message}${hasImage.current ? ' (the image above is kept)' : ''}`),
    );
  };

  useEffect(() => {
    const onPaste = (e: ClipboardEvent) => {
      const f = [...(e.clipboardData?.files ?? [])].find((x) => x.type.startsWith('image/'));
      if (f) take(e.clipboardData?.files);
    };
    window.addEventListener('paste', onPaste);
    return () => window.removeEventListener('paste', onPaste);
  }, [onFile]);

  const frame = (f: Framing) => {
    setError(undefined);
    onFraming(f);
  };
  const geometry = img && framing.mode === 'crop' ? cropGeometry(img, width, height, framing) : undefined;

  return (
    <section class="card" aria-label="Image">
      {/* A drop target only: the picker button inside is what the keyboard reaches. */}
      <section
        aria-label="Drop a picture here"
        class={`drop${img ? ' has-image' : ''}${dragging ? ' dragging' : ''}`}
        data-testid="drop-zone"
        onDragEnter={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={(e) => {
          if (!(e.currentTarget as HTMLElement).contains(e.relatedTarget as Node | null)) setDragging(false);
        }}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          take(e.dataTransfer?.files);
        }}
      >
        {img ? <CropEditor img={img} geometry={geometry} framing={framing} onFraming={frame} /> : <p>{dragging ? 'Drop the image to use it' : 'Drop an image here, paste it, or'}</p>}
        <button type="button" onClick={() => picker.current?.click()}>
          {img ? 'Choose another image' : 'Choose an image'}
        </button>
        <input ref={picker} type="file" accept="image/*" hidden data-testid="file-input" onChange={(e) => take((e.target as HTMLInputElement).files)} />
      </section>
      {error && (
        <p class="error" role="alert" data-testid="image-error">
          {error}
        </p>
      )}
      {img && (
        <>
          <fieldset class="modes">
            <legend>Resize</legend>
            {(['crop', 'fit', 'stretch'] as const).map((m) => (
              <label key={m}>
                <input type="radio" name="mode" value={m} checked={framing.mode === m} onChange={() => frame({ ...framing, mode: m })} /> {m}
              </label>
            ))}
          </fieldset>
          {geometry && (
            <div class="sliders">
              {(
                [
                  { axis: 'x', label: 'Horizontal', free: geometry.freeX },
                  { axis: 'y', label: 'Vertical', free: geometry.freeY },
                ] as const
              ).map(({ axis, label, free }) => (
                <label key={axis}>
                  <span>{label}</span>
                  <input
                    type="range"
                    min={0}
                    max={1}
                    step={0.01}
                    value={framing[axis]}
                    disabled={free < MOVABLE}
                    aria-label={`crop ${label.toLowerCase()}`}
                    onInput={(e) => frame({ ...framing, [axis]: Number((e.target as HTMLInputElement).value) })}
                  />
                </label>
              ))}
              {geometry.freeX < MOVABLE && geometry.freeY < MOVABLE && <small>The image already has the video's shape: the whole of it is used.</small>}
            </div>
          )}
          <ModelInputPreview img={img} width={width} height={height} framing={framing} />
        </>
      )}
    </section>
  );
}

function CropEditor({ img, geometry, framing, onFraming }: { img: HTMLImageElement; geometry?: ReturnType<typeof cropGeometry>; framing: Framing; onFraming: (f: Framing) => void }) {
  const box = useRef<HTMLDivElement>(null);
  const drag = useRef<{ px: number; py: number; x: number; y: number } | undefined>(undefined);
  const onMove = (e: PointerEvent) => {
    const d = drag.current;
    const rect = box.current?.getBoundingClientRect();
    if (!d || !rect || !geometry) return;
    const clamp = (v: number) => Math.min(1, Math.max(0, v));
    onFraming({
      ...framing,
      x: geometry.freeX >= MOVABLE ? clamp(d.x + (e.clientX - d.px) / rect.width / geometry.freeX) : framing.x,
      y: geometry.freeY >= MOVABLE ? clamp(d.y + (e.clientY - d.py) / rect.height / geometry.freeY) : framing.y,
    });
  };
  const win = geometry?.win;
  return (
    <div class="crop" ref={box}>
      <img src={img.src} alt="your upload, with the crop window over it" draggable={false} />
      {win && geometry && (
        <div
          class="window"
          data-testid="crop-window"
          role="slider"
          tabIndex={0}
          aria-label="crop window: drag it, or move it with the arrow keys"
          aria-valuenow={Math.round(framing.x * 100)}
          aria-valuetext={`${Math.round(framing.x * 100)}% from the left, ${Math.round(framing.y * 100)}% from the top`}
          style={{ left: `${win.left * 100}%`, top: `${win.top * 100}%`, width: `${win.width * 100}%`, height: `${win.height * 100}%` }}
          onPointerDown={(e) => {
            (e.target as HTMLElement).setPointerCapture(e.pointerId);
            drag.current = { px: e.clientX, py: e.clientY, x: framing.x, y: framing.y };
          }}
          onPointerMove={onMove}
          onPointerUp={() => (drag.current = undefined)}
          onKeyDown={(e) => {
            const step = 0.05;
            const keys: Record<string, [number, number]> = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
            const k = keys[e.key];
            if (!k) return;
            e.preventDefault();
            const dx = geometry.freeX >= MOVABLE ? k[0] : 0;
            const dy = geometry.freeY >= MOVABLE ? k[1] : 0;
            onFraming({ ...framing, x: Math.min(1, Math.max(0, framing.x + dx)), y: Math.min(1, Math.max(0, framing.y + dy)) });
          }}
        />
      )}
    </div>
  );
}

/** Draws the model input as the server will make it (crop window, letterbox, or stretch). */
function ModelInputPreview({ img, width, height, framing }: { img: HTMLImageElement; width: number; height: number; framing: Framing }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = canvas.current;
    const ctx = c?.getContext('2d');
    if (!c || !ctx) return;
    c.width = width;
    c.height = height;
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, width, height);
    const sw = img.naturalWidth;
    const sh = img.naturalHeight;
    if (framing.mode === 'stretch') ctx.drawImage(img, 0, 0, width, height);
    else if (framing.mode === 'fit') {
      const s = Math.min(width / sw, height / sh);
      ctx.drawImage(img, (width - sw * s) / 2, (height - sh * s) / 2, sw * s, sh * s);
    } else {
      const w = cropWindow(sw, sh, width, height, framing.x, framing.y);
      const s = w.coverW / sw;
      ctx.drawImage(img, w.left / s, w.top / s, width / s, height / s, 0, 0, width, height);
    }
  }, [img, width, height, framing]);
  return (
    <figure class="model-input">
      <canvas ref={canvas} data-testid="model-input" />
      <figcaption>
        Model input {width} × {height}
      </figcaption>
    </figure>
  );
}
