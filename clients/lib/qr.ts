// QR codes for invitations (docs/PROTOCOL.md §4): the connector renders the `CB1:` text as a
// PNG and in the terminal; the device decodes a PNG back to text. Byte mode, error correction
// M, as the protocol sizes it. Decoding never guesses: no code found is a usage error.
import { readFile, writeFile } from 'node:fs/promises';
import jsQRModule from 'jsqr';
import { PNG } from 'pngjs';
import QRCode from 'qrcode';
import { UsageError } from './cli.ts';

// jsqr is CommonJS whose typings declare an ES default export; at run time the module itself is the function.
const jsQR = jsQRModule as unknown as typeof jsQRModule.default;

const OPTIONS = { errorCorrectionLevel: 'M', margin: 4 } as const;

/** Writes the QR code as a PNG (8 pixels per module). */
export async function writeQrPng(text: string, path: string): Promise<void> {
  const png = await QRCode.toBuffer([{ data: Buffer.from(text, 'latin1'), mode: 'byte' }], {
    ...OPTIONS,
    type: 'png',
    scale: 8,
  });
  await writeFile(path, png, { mode: 0o600 });
}

/** The QR code drawn with block characters, for a terminal. */
export async function qrForTerminal(text: string): Promise<string> {
  return QRCode.toString([{ data: Buffer.from(text, 'latin1'), mode: 'byte' }], {
    ...OPTIONS,
    type: 'terminal',
    small: true,
  });
}

/** Reads the QR code in a PNG file; UsageError if the file is no PNG or holds no QR code. */
export async function readQrPng(path: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    throw new UsageError(`cannot read ${path}`);
  }
  let image: PNG;
  try {
    image = PNG.sync.read(bytes);
  } catch {
    throw new UsageError(`${path} is not a PNG image`);
  }
  const found = jsQR(
    new Uint8ClampedArray(image.data.buffer, image.data.byteOffset, image.data.length),
    image.width,
    image.height,
  );
  if (!found) throw new UsageError(`no QR code found in ${path}`);
  // Byte-mode payloads come back as raw bytes; the protocol text is ASCII.
  return found.binaryData.length > 0 ? Buffer.from(found.binaryData).toString('latin1') : found.data;
}
