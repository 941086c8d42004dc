import { BadRequestException, Controller, Get, NotFoundException, Param, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { matchesEtag } from '../web-assets/etag.js';
import { ObjectCatalogue } from './object-catalogue.service.js';

/** Longest name looked up; the longest in the catalogue is far shorter. */
export const MAX_OBJECT_NAME_LENGTH = 200;
// Fixed for a build; a day's cache, then a revalidation with the ETag.
const CACHE_CONTROL = 'public, max-age=86400';

/** `GET /api/objects/<name>`: the built-in offline catalogue, public and cacheable. */
@ApiTags('objects')
@Controller()
export class ObjectsController {
  constructor(private readonly catalogue: ObjectCatalogue) {}

  @Get('api/objects/:name')
  @ApiOperation({
    summary: 'What an object is: names, type, constellation, magnitude, size and distance, from the offline catalogue',
  })
  @ApiParam({
    name: 'name',
    description: 'Any usual spelling: "M42", "M 42", "Messier 42", "NGC 1976", "C 14", "IC 434", "Orion Nebula", "Moon"',
  })
  @ApiOkResponse({ description: 'The object (fields unknown for it are absent); ETag and Cache-Control set' })
  @ApiResponse({ status: 304, description: 'Unchanged (If-None-Match)' })
  @ApiResponse({ status: 400, description: `A name longer than ${MAX_OBJECT_NAME_LENGTH} characters` })
  @ApiResponse({ status: 404, description: 'A name the catalogue does not know' })
  object(@Param('name') name: string, @Req() req: Request, @Res() res: Response): void {
    if (name.length > MAX_OBJECT_NAME_LENGTH) {
      throw new BadRequestException(`an object name is at most ${MAX_OBJECT_NAME_LENGTH} characters (got ${name.length})`);
    }
    const entry = this.catalogue.entry(name);
    if (!entry) {
      throw new NotFoundException(
        `no object named ${JSON.stringify(name)} in the built-in catalogue: it knows the Messier and Caldwell objects, ` +
          'bright and named NGC/IC objects, the Sun, the Moon and the planets (e.g. "M 42", "NGC 7000", "C 14", "Orion Nebula", "Saturn")',
      );
    }
    res.set({ ETag: entry.etag, 'Cache-Control': CACHE_CONTROL });
    if (matchesEtag(req.headers['if-none-match'], entry.etag)) {
      res.status(304).end();
      return;
    }
    res.type('application/json').send(entry.json);
  }
}
