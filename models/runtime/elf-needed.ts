// The shared libraries an ELF file asks the dynamic loader for (DT_NEEDED) and its own search
// path (DT_RUNPATH/DT_RPATH): the ground truth of which CUDA major version an onnxruntime CUDA
// provider was built against, so nothing about it has to be assumed from a package's name.
// Only the headers, the dynamic section and its string table are read, never the whole file
// (the CUDA provider is over 200 MB). No npm package reads DT_NEEDED, hence these few lines.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface ElfDynamic {
  needed: string[];
  /** DT_RUNPATH, else DT_RPATH, as written (may hold $ORIGIN). */
  runpath?: string;
}

const SHT_DYNAMIC = 6;
const DT_NEEDED = 1n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;

function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const got = readSync(fd, buf, 0, length, offset);
  if (got !== length) throw new Error('truncated ELF file');
  return buf;
}

/** The dynamic entries of a 64-bit little-endian ELF file (x86-64, arm64); undefined for anything else. */
export function readElfDynamic(path: string): ElfDynamic | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < 64) return undefined;
    const header = readAt(fd, 0, 64);
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) return undefined;
    const shoff = Number(header.readBigUInt64LE(0x28));
    const shentsize = header.readUInt16LE(0x3a);
    const shnum = header.readUInt16LE(0x3c);
    if (shoff === 0 || shnum === 0 || shentsize < 64 || shoff + shnum * shentsize > size) return undefined;
    const sections = readAt(fd, shoff, shnum * shentsize);
    const section = (i: number) => {
      const at = i * shentsize;
      return {
        type: sections.readUInt32LE(at + 4),
        offset: Number(sections.readBigUInt64LE(at + 24)),
        size: Number(sections.readBigUInt64LE(at + 32)),
        link: sections.readUInt32LE(at + 40),
      };
    };
    for (let i = 0; i < shnum; i++) {
      const dyn = section(i);
      if (dyn.type !== SHT_DYNAMIC || dyn.link >= shnum) continue;
      const strtab = section(dyn.link);
      if (dyn.offset + dyn.size > size || strtab.offset + strtab.size > size) return undefined;
      const strings = readAt(fd, strtab.offset, strtab.size);
      const str = (at: number) => {
        const end = strings.indexOf(0, at);
        return strings.toString('utf8', at, end < 0 ? strings.length : end);
      };
      const entries = readAt(fd, dyn.offset, dyn.size);
      const out: ElfDynamic = { needed: [] };
      let rpath: string | undefined;
      for (let at = 0; at + 16 <= entries.length; at += 16) {
        const tag = entries.readBigInt64LE(at);
        if (tag === 0n) break;
        const value = Number(entries.readBigUInt64LE(at + 8));
        if (tag === DT_NEEDED) out.needed.push(str(value));
        else if (tag === DT_RUNPATH) out.runpath = str(value);
        else if (tag === DT_RPATH) rpath = str(value);
      }
      out.runpath ??= rpath;
      return out;
    }
    return { needed: [] };
  } finally {
    closeSync(fd);
  }
}
