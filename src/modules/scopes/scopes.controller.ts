import { Controller, Get, Header, NotFoundException } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { ScopeSummary } from '../../shared/scope-hooks/scope-hooks.js';
import { ScopesService } from './scopes.service.js';

/** `GET /api/scopes`: every live scope, `main` first. Public, as the viewer's files are. */
@ApiTags('scopes')
@Controller('api')
export class ScopesController {
  constructor(private readonly scopes: ScopesService) {}

  @Get('scopes')
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'The live scopes: id, title, object, version, stackSize, exposure, viewers, updated, thumbnail' })
  @ApiResponse({ status: 200, description: '`{"scopes": [...]}`, main first, then by id' })
  async list(): Promise<{ scopes: ScopeSummary[] }> {
    if (this.scopes.ids().length === 0) {
      // A scope's own app: the list is the main app's.
      throw new NotFoundException('the list of scopes is at /api/scopes');
    }
    return { scopes: await this.scopes.listFresh() };
  }
}
