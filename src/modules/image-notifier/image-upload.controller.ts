import {
  BadRequestException,
  Controller,
  HttpCode,
  HttpException,
  HttpStatus,
  Inject,
  PayloadTooLargeException,
  Put,
  ServiceUnavailableException,
  Query,
  Req,
  Res,
  UnprocessableEntityException,
  UnsupportedMediaTypeException,
  UseGuards,
  ValidationPipe,
} from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import express, { type Request, type Response } from 'express';
import type { ValidationError } from 'class-validator';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { ControlGuard } from '../../shared/control-guard/control.guard.js';
import { HttpLimits } from '../../shared/http-limits/http-limits.js';
import { InvalidMetricsError, WebAssetsService, WebFolderError } from '../web-assets/web-assets.service.js';
import { ACCEPTED_MEDIA_TYPES, formatOfMediaType } from '../../common/image-format.js';
import { ImageNotifier, type ImageMetrics } from './image-notifier.service.js';
import { ImageRejectedError } from './image-rejected.error.js';
import { readSizedBody } from './sized-body.js';
import { uploadMemory } from './upload-memory.js';
import { UploadSlots } from './upload-slots.js';
import { PublishedDto, PublishQueryDto } from './publish-query.dto.js';

const ACCEPTED_TYPES = [...ACCEPTED_MEDIA_TYPES];

/** One string naming every bad query value, so the answer says which variable and what is allowed. */
const queryPipe = new ValidationPipe({
  transform: true,
  exceptionFactory: (errors: ValidationError[]) =>
    new BadRequestException(
      errors.map((e) => `${Object.values(e.constraints ?? {})[0] ?? `${e.property} is invalid`}, got ${JSON.stringify(e.value)}`).join('; '),
    ),
});

type BodyParser = ReturnType<typeof express.raw>;

/**
 * Reads the body inside the handler, so the guard decides before any byte is read: a plain
 * body of a declared length (what stackers send) into one buffer as it arrives, anything else
 * (chunked, or with a Content-Encoding) through express.raw().
 */
function readBody(parse: BodyParser, req: Request, res: Response, limit: number): Promise<Buffer> {
  const length = Number(req.headers['content-length']);
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (Number.isSafeInteger(length) && length > 0 && length <= limit && encoding === 'identity') {
    return readSizedBody(req, length).catch((err: Error) => {
      throw new BadRequestException(`could not read the request body: ${err.message}`);
    });
  }
  return new Promise((resolve, reject) => {
    parse(req, res, (err?: unknown) => {
      if (err === undefined || err === null) {
        resolve(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
      } else if ((err as { type?: string }).type === 'entity.too.large') {
        reject(new PayloadTooLargeException(`image larger than ${limit} bytes`));
      } else {
        reject(new BadRequestException(`could not read the request body: ${(err as Error).message}`));
      }
    });
  });
}

/** `PUT /api/image`: publish a JPEG, PNG, TIFF or FITS over HTTP, for stackers that can run a command or a script. */
@ApiTags('control')
@ApiBearerAuth()
@Controller('api')
@UseGuards(ControlGuard)
export class ImageUploadController {
  private readonly rawBody: BodyParser;
  private readonly slots: UploadSlots;

  constructor(
    @Inject(IMAGE_SERVER_OPTIONS) private readonly options: ImageServerOptions,
    private readonly notifier: ImageNotifier,
    private readonly assets: WebAssetsService,
    private readonly limits: HttpLimits,
  ) {
    // The Content-Type was checked before: take the body whatever it declares.
    this.rawBody = express.raw({ type: () => true, limit: options.maxImageBytes });
    this.slots = new UploadSlots(options.maxUploadsInFlight, options.maxUploadsQueued);
  }

  /** Answers once the files are on disk and `new_image` has been sent. */
  @Put('image')
  @ApiOperation({
    summary: 'Publish an image',
    description:
      'The body is the image bytes: JPEG, PNG, TIFF or FITS (image/fits or application/fits). Linear images (FITS, 16-bit or float PNG / TIFF) are auto-stretched per STRETCH. ' +
      'object (the target shown) wins over a FITS OBJECT card, which wins over POST /api/target. ' +
      'stackSize and exposure left out of the query come from a FITS header (STACKCNT, NCOMBINE or IMGCOUNT; LIVETIME, or EXPTIME / EXPOSURE × stack size). ' +
      'Answers once web_image.jpg and data.json are on disk and `new_image` is sent.',
  })
  @ApiConsumes(...ACCEPTED_TYPES)
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiOkResponse({ type: PublishedDto })
  @ApiResponse({ status: 400, description: 'A bad stackSize, exposure or object, or an empty body' })
  @ApiResponse({ status: 401, description: 'No or wrong bearer token (a token is configured)' })
  @ApiResponse({ status: 403, description: 'Not from loopback (no token configured)' })
  @ApiResponse({ status: 413, description: 'Larger than maxImageBytes, or more pixels than maxInputPixels (MAX_INPUT_PIXELS)' })
  @ApiResponse({ status: 415, description: 'Not one of the accepted types, the bytes are another format, or a FITS this service does not read (tile-compressed .fz, more than 3 planes)' })
  @ApiResponse({ status: 422, description: 'A damaged or truncated image (a FITS cut short or with no END card)' })
  @ApiResponse({ status: 503, description: 'Too many uploads at once (Retry-After), or the web folder cannot be written (read-only)' })
  @ApiResponse({ status: 507, description: 'The disk of the web folder is full' })
  @HttpCode(200)
  async upload(
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
    @Query(queryPipe) query: PublishQueryDto,
  ): Promise<{ published: true; bytes: number; stackSize: number; exposure: number }> {
    const metrics: ImageMetrics = { stackSize: query.stackSize, exposureSeconds: query.exposure, object: query.object };
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
    // Bodies are read only with a slot: queued uploads cost a socket, not their bytes.
    const release = await this.slots.acquire(new Promise<void>((resolve) => res.once('close', resolve)));
    if (release === undefined) {
      this.limits.refusals.refused('upload', req.socket.remoteAddress ?? '?', `${this.options.maxUploadsInFlight} uploads in flight and ${this.options.maxUploadsQueued} waiting`);
      res.setHeader('Retry-After', '2');
      res.setHeader('Connection', 'close');
      throw new ServiceUnavailableException('too many uploads at once: try again shortly');
    }
    let body: Buffer | undefined;
    try {
      body = await readBody(this.rawBody, req, res, this.options.maxImageBytes);
      if (body.length === 0) {
        throw new BadRequestException('the request body is empty: send the image bytes');
      }
      try {
        // The bytes must be what the header says: a PNG sent as image/jpeg is a client bug worth reporting.
        await this.notifier.publish(body, metrics, { declaredFormat });
      } catch (err) {
        throw toHttpError(err);
      }
      // Memory for the next upload like this one (a refused body says nothing of the next).
      void uploadMemory.prepareAfter(body);
    } finally {
      release();
    }
    const session = this.assets.session;
    return { published: true, bytes: body.length, stackSize: session.stackSize, exposure: session.exposureSeconds };
  }
}

function toHttpError(err: unknown): unknown {
  if (err instanceof ImageRejectedError) {
    switch (err.reason) {
      case 'unsupported-type':
        return new UnsupportedMediaTypeException(err.message);
      case 'too-large':
        return new PayloadTooLargeException(err.message);
      default:
        return new UnprocessableEntityException(err.message);
    }
  }
  if (err instanceof InvalidMetricsError) {
    return new BadRequestException(err.message);
  }
  if (err instanceof WebFolderError) {
    // 507 when space can be freed; 503 while the folder cannot be written at all.
    const status = err.problem === 'full' ? HttpStatus.INSUFFICIENT_STORAGE : HttpStatus.SERVICE_UNAVAILABLE;
    return new HttpException(`could not publish the image: ${err.message}; the previous image is still served`, status);
  }
  if (err instanceof HttpException) {
    return err;
  }
  return new HttpException(`could not publish the image: ${(err as Error).message}`, HttpStatus.INTERNAL_SERVER_ERROR);
}
