import {
  BadRequestException,
  Controller,
  HttpCode,
  HttpException,
  HttpStatus,
  Inject,
  PayloadTooLargeException,
  Put,
  Query,
  Req,
  UnprocessableEntityException,
  UnsupportedMediaTypeException,
  UseGuards,
} from '@nestjs/common';
import type { Request } from 'express';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { ControlGuard } from '../lifecycle/control.guard.js';
import { InvalidMetricsError, WebAssetsService } from '../web-assets/web-assets.service.js';
import { formatOfMediaType, MEDIA_TYPES, sniffImageFormat } from './image-format.js';
import { ImageNotifier, type ImageMetrics } from './image-notifier.service.js';
import { ImageRejectedError } from './image-rejected.error.js';

const ACCEPTED_TYPES = Object.values(MEDIA_TYPES);

function parseStackSize(raw: unknown): number | undefined {
  if (raw === undefined) {
    return undefined;
  }
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw new BadRequestException(`stackSize must be an integer ≥ 0, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function parseExposure(raw: unknown): number | undefined {
  if (raw === undefined) {
    return undefined;
  }
  if (typeof raw !== 'string' || !/^\d+(\.\d+)?$/.test(raw) || !Number.isFinite(Number(raw))) {
    throw new BadRequestException(`exposure must be a number of seconds ≥ 0, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

/** Reads the body, refusing it as soon as it passes `limit` bytes. */
function readBody(req: Request, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        // The answer is decided: close the connection after it rather than read the rest.
        req.res?.setHeader('Connection', 'close');
        req.resume();
        reject(new PayloadTooLargeException(`image larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', reject);
  });
}

/** `PUT /api/image`: publish a JPEG, PNG or TIFF over HTTP, for stackers that can run a command or a script. */
@Controller('api')
@UseGuards(ControlGuard)
export class ImageUploadController {
  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly notifier: ImageNotifier,
    private readonly assets: WebAssetsService,
  ) {}

  /** Answers once the files are on disk and `new_image` has been sent. */
  @Put('image')
  @HttpCode(200)
  async upload(
    @Req() req: Request,
    @Query('stackSize') stackSizeRaw: unknown,
    @Query('exposure') exposureRaw: unknown,
  ): Promise<{ published: true; bytes: number; stackSize: number; exposure: number }> {
    const metrics: ImageMetrics = { stackSize: parseStackSize(stackSizeRaw), exposureSeconds: parseExposure(exposureRaw) };
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const declaredFormat = formatOfMediaType(type);
    if (declaredFormat === undefined) {
      throw new UnsupportedMediaTypeException(`Content-Type must be one of ${ACCEPTED_TYPES.join(', ')}, got "${type || '(none)'}"`);
    }
    const declaredLength = Number(req.headers['content-length']);
    if (Number.isFinite(declaredLength) && declaredLength > this.options.maxImageBytes) {
      req.res?.setHeader('Connection', 'close');
      req.resume();
      throw new PayloadTooLargeException(`image of ${declaredLength} bytes is over the limit of ${this.options.maxImageBytes} bytes`);
    }
    const body = await readBody(req, this.options.maxImageBytes);
    if (body.length === 0) {
      throw new BadRequestException('the request body is empty: send the image bytes');
    }
    // The bytes must be what the header says: a PNG sent as image/jpeg is a client bug worth reporting.
    const actual = sniffImageFormat(body);
    if (actual !== undefined && actual !== declaredFormat) {
      throw new UnsupportedMediaTypeException(`Content-Type is ${type} but the body is a ${MEDIA_TYPES[actual]} image`);
    }
    try {
      await this.notifier.publish(body, metrics);
    } catch (err) {
      throw toHttpError(err);
    }
    const session = this.assets.session;
    return { published: true, bytes: body.length, stackSize: session.stackSize, exposure: session.exposureSeconds };
  }
}

function toHttpError(err: unknown): unknown {
  if (err instanceof ImageRejectedError) {
    return err.reason === 'unsupported-type'
      ? new UnsupportedMediaTypeException(err.message)
      : new UnprocessableEntityException(err.message);
  }
  if (err instanceof InvalidMetricsError) {
    return new BadRequestException(err.message);
  }
  if (err instanceof HttpException) {
    return err;
  }
  return new HttpException(`could not publish the image: ${(err as Error).message}`, HttpStatus.INTERNAL_SERVER_ERROR);
}
