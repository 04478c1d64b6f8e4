// Upload by drop, paste or picker; the crop window over the image (drag it, or use the sliders);
// and a live preview of exactly what the model will see.
import { useEffect, useRef, useState } from 'preact/hooks';
import { cropWindow, type ResizeMode } from '../../models/pipeline/framing.js';

export interface Framing {
  mode: ResizeMode;
  x: number;
  y: number;
}

interface Props {
  file: File | undefined;
  onFile: (f: File) => void;
  width: number;
  height: number;
  framing: Framing;
  onFraming: (f: Framing) => void;
}

export function ImageInput({ file, onFile, width, height, framing, onFraming }: Props) {
  const [img, setImg] = useState<HTMLImageElement>();
  const [error, setError] = useState<string>();
  const picker = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (!file) return;
    const url = URL.createObjectURL(file);
    const el = new Image();
    el.onload = () => {
      setImg(el);
      setError(undefined);
    };
    el.onerror = () => setError(`${file.name} is not an image this browser can show; use PNG, JPEG, WebP, AVIF, GIF or TIFF`);
    el.src = url;
    return () => URL.revokeObjectURL(url);
  }, [file]);

  useEffect(() => {
    const onPaste = (e: ClipboardEvent) => {
      const f = [...(e.clipboardData?.files ?? [])].find((x) => x.type.startsWith('image/'));
      if (f) onFile(f);
    };
    window.addEventListener('paste', onPaste);
    return () => window.removeEventListener('paste', onPaste);
  }, [onFile]);

  const take = (files: FileList | null | undefined) => {
    const f = files?.[0];
    if (f) onFile(f);
  };

  return (
    <section class="card" aria-label="Image">
      <div
        class={`drop ${img ? 'has-image' : ''}`}
        onDragOver={(e) => e.preventDefault()}
        onDrop={(e) => {
          e.preventDefault();
          take(e.dataTransfer?.files);
        }}
      >
        {img ? (
          <CropEditor img={img} width={width} height={height} framing={framing} onFraming={onFraming} />
        ) : (
          <p>Drop an image here, paste it, or</p>
        )}
        <button type="button" onClick={() => picker.current?.click()}>
          {img ? 'Choose another image' : 'Choose an image'}
        </button>
        <input ref={picker} type="file" accept="image/*" hidden data-testid="file-input" onChange={(e) => take((e.target as HTMLInputElement).files)} />
      </div>
      {error && <p class="error">{error}</p>}
      {img && (
        <>
          <fieldset class="modes">
            <legend>Resize</legend>
            {(['crop', 'fit', 'stretch'] as const).map((m) => (
              <label key={m}>
                <input type="radio" name="mode" value={m} checked={framing.mode === m} onChange={() => onFraming({ ...framing, mode: m })} /> {m}
              </label>
            ))}
          </fieldset>
          {framing.mode === 'crop' && (
            <div class="sliders">
              <label>
                Horizontal <input type="range" min={0} max={1} step={0.01} value={framing.x} aria-label="crop horizontal" onInput={(e) => onFraming({ ...framing, x: Number((e.target as HTMLInputElement).value) })} />
              </label>
              <label>
                Vertical <input type="range" min={0} max={1} step={0.01} value={framing.y} aria-label="crop vertical" onInput={(e) => onFraming({ ...framing, y: Number((e.target as HTMLInputElement).value) })} />
              </label>
            </div>
          )}
          <ModelInputPreview img={img} width={width} height={height} framing={framing} />
        </>
      )}
    </section>
  );
}

function CropEditor({ img, width, height, framing, onFraming }: { img: HTMLImageElement; width: number; height: number; framing: Framing; onFraming: (f: Framing) => void }) {
  const box = useRef<HTMLDivElement>(null);
  const drag = useRef<{ px: number; py: number; x: number; y: number } | undefined>(undefined);
  const w = cropWindow(img.naturalWidth, img.naturalHeight, width, height, framing.x, framing.y);
  const scale = w.coverW / img.naturalWidth;
  // The kept region in source-image fractions.
  const win = { left: w.left / scale / img.naturalWidth, top: w.top / scale / img.naturalHeight, width: width / scale / img.naturalWidth, height: height / scale / img.naturalHeight };
  const freeX = 1 - win.width;
  const freeY = 1 - win.height;
  const onMove = (e: PointerEvent) => {
    const d = drag.current;
    const rect = box.current?.getBoundingClientRect();
    if (!d || !rect) return;
    const clamp = (v: number) => Math.min(1, Math.max(0, v));
    onFraming({
      ...framing,
      x: freeX > 1e-6 ? clamp(d.x + (e.clientX - d.px) / rect.width / freeX) : framing.x,
      y: freeY > 1e-6 ? clamp(d.y + (e.clientY - d.py) / rect.height / freeY) : framing.y,
    });
  };
  return (
    <div class="crop" ref={box}>
      <img src={img.src} alt="uploaded" draggable={false} />
      {framing.mode === 'crop' && (
        <div
          class="window"
          data-testid="crop-window"
          role="slider"
          tabIndex={0}
          aria-label="crop window (arrow keys move it)"
          aria-valuenow={Math.round(framing.x * 100)}
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
            onFraming({ ...framing, x: Math.min(1, Math.max(0, framing.x + k[0])), y: Math.min(1, Math.max(0, framing.y + k[1])) });
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
