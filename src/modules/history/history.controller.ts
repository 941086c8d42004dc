import { constants } from 'node:fs';
import { BadRequestException, Controller, Get, Inject, NotFoundException, Param, Query, Req, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { open } from 'node:fs/promises';
import { ViewerGate } from '../../shared/viewer-gate/viewer-gate.js';
import { IMAGE_SERVER_OPTIONS, type ImageServerOptions } from '../../config/image-server-options.js';
import { matchesEtag } from '../web-assets/etag.js';
import { HistoryService, NoFramesError, PREVIEW_SIZE, type HistoryFrame } from './history.service.js';

const IMMUTABLE = 'public, max-age=31536000, immutable';
const VERSION = /^[1-9]\d{0,15}$/;
const DEFAULT_TIMELAPSE_WIDTH = 640;

/** A frame as listed, with the URL of its preview. */
export interface ListedFrame extends HistoryFrame {
  preview: string;
}

/** The night's history for viewers: the frames, each preview (immutable), and a timelapse. */
@ApiTags('history')
@Controller()
export class HistoryController {
  constructor(
    private readonly history: HistoryService,
    private readonly gate: ViewerGate,
    @Inject(IMAGE_SERVER_OPTIONS) options: ImageServerOptions,
  ) {
    // A scope's app is reached under /s/<id>/.
    this.prefix = options.scopeId === undefined ? '' : `/s/${options.scopeId}`;
  }

  private readonly prefix: string;

  @Get('api/history')
  @ApiOperation({ summary: 'The frames of the night, oldest first', description: '`{"frames": [{"version", "at", "stackSize", "exposure", "object", "preview"}]}`; empty with HISTORY_BUDGET_MB=0.' })
  async list(@Res({ passthrough: true }) res: Response): Promise<{ frames: ListedFrame[] }> {
    this.assertRunning();
    res.setHeader('Cache-Control', 'no-cache');
    const frames = await this.history.list();
    return { frames: frames.map((f) => ({ ...f, preview: `${this.prefix}/h/${f.version}.jpg` })) };
  }

  @Get('api/history/timelapse.webp')
  @ApiOperation({ summary: 'An animated WebP of the frames from `from` to `to` (versions; all by default), `width` px wide (≤ 1280, default 640); made once and kept' })
  @ApiResponse({ status: 400, description: 'from, to or width is not a valid number, or from > to' })
  @ApiResponse({ status: 404, description: 'No frame in that range' })
  async timelapse(
    @Query('from') from: unknown,
    @Query('to') to: unknown,
    @Query('width') width: unknown,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    this.assertRunning();
    const request = {
      from: versionParam('from', from),
      to: versionParam('to', to),
      width: width === undefined ? DEFAULT_TIMELAPSE_WIDTH : widthParam(width),
    };
    if (request.from !== undefined && request.to !== undefined && request.from > request.to) {
      throw new BadRequestException(`from (${request.from}) must not be after to (${request.to})`);
    }
    let path: string;
    try {
      path = await this.history.timelapse(request);
    } catch (err) {
      throw err instanceof NoFramesError ? new NotFoundException(err.message) : err;
    }
    await sendFile(req, res, path, 'image/webp', 'no-cache');
  }

  @Get('h/:name')
  @ApiOperation({ summary: "A version's preview (longest side 1280 px at most), immutable; 404 once thinned away" })
  async preview(@Param('name') name: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    this.assertRunning();
    const version = /^(.+)\.jpg$/.exec(name)?.[1];
    const path = version !== undefined && VERSION.test(version) ? await this.history.previewFile(Number(version)) : undefined;
    if (path === undefined) {
      throw new NotFoundException(`no preview of ${name} in the history (thinned away, or never kept)`);
    }
    await sendFile(req, res, path, 'image/jpeg', IMMUTABLE);
  }

  private assertRunning(): void {
    if (!this.gate.acceptsViewers) {
      throw new ServiceUnavailableException('stackcast is stopped');
    }
  }
}

function versionParam(name: string, value: unknown): number | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (typeof value !== 'string' || !VERSION.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new BadRequestException(`${name} must be a version number (an integer ≥ 1), got ${JSON.stringify(value).slice(0, 60)}`);
  }
  return Number(value);
}

function widthParam(value: unknown): number {
  const width = typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!(width >= 16 && width <= PREVIEW_SIZE)) {
    throw new BadRequestException(`width must be an integer number of pixels from 16 to ${PREVIEW_SIZE}, got ${JSON.stringify(value).slice(0, 60)}`);
  }
  return width;
}

/** A file that never changes under its name: strong ETag from its identity, 304 on a match. */
async function sendFile(req: Request, res: Response, path: string, type: string, cacheControl: string): Promise<void> {
  let file;
  try {
    // Non-blocking: a FIFO in its place must not hold a libuv thread (it is then no file).
    file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    throw new NotFoundException('thinned away meanwhile');
  }
  try {
    const stats = await file.stat();
    if (!stats.isFile()) {
      throw new NotFoundException('not a preview');
    }
    const etag = `"${stats.ino.toString(36)}-${stats.size.toString(36)}-${Math.floor(stats.mtimeMs).toString(36)}"`;
    res.setHeader('Cache-Control', cacheControl);
    res.setHeader('ETag', etag);
    res.setHeader('Last-Modified', stats.mtime.toUTCString());
    if (matchesEtag(req.headers['if-none-match'], etag)) {
      res.status(304).end();
      return;
    }
    res.setHeader('Content-Type', type);
    res.setHeader('Content-Length', String(stats.size));
    res.status(200).end(req.method === 'HEAD' ? undefined : await file.readFile());
  } finally {
    await file.close();
  }
}
