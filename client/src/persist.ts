// What survives a reload: the form and the crop in localStorage, the image in IndexedDB (too big
// for localStorage). Both are read back through zod / type checks: they may come from an older page.
import { del, get, set } from 'idb-keyval';
import { z } from 'zod';
import type { Framing } from '../../common/settings.js';
import { formSchema, framingSchema, type FormValues } from './form.js';

const FORM_KEY = 'svd-studio-form';
const IMAGE_KEY = 'svd-studio-image';
const CURRENT_KEY = 'svd-studio-current-job';

const savedSchema = z.object({ values: formSchema, framing: framingSchema });

export function loadForm(): { values: FormValues; framing: Framing } | undefined {
  try {
    const r = savedSchema.safeParse(JSON.parse(localStorage.getItem(FORM_KEY) ?? 'null'));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

export function saveForm(values: FormValues, framing: Framing): void {
  try {
    localStorage.setItem(FORM_KEY, JSON.stringify({ values, framing }));
  } catch {
    // storage full or disabled: the page works, it just forgets on reload
  }
}

export async function loadImage(): Promise<File | undefined> {
  try {
    const v = (await get(IMAGE_KEY)) as { blob?: unknown; name?: unknown } | undefined;
    if (!v || !(v.blob instanceof Blob) || typeof v.name !== 'string') return undefined;
    return new File([v.blob], v.name, { type: v.blob.type });
  } catch {
    return undefined;
  }
}

export function saveImage(file: File | undefined): void {
  (file ? set(IMAGE_KEY, { blob: file, name: file.name }) : del(IMAGE_KEY)).catch(() => {});
}

export const loadCurrentJob = () => localStorage.getItem(CURRENT_KEY) ?? undefined;
export const saveCurrentJob = (id: string) => localStorage.setItem(CURRENT_KEY, id);
