import { BadRequestException, Body, Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { objectName, OBJECT_NAME_RULE } from '../../common/image-details.js';
import { ControlGuard } from '../../shared/control-guard/control.guard.js';
import { ScopeTitle, scopeTitle, TITLE_RULE } from '../../shared/scope-hooks/scope-title.js';
import { ImageNotifier } from './image-notifier.service.js';

/** The answer of `POST /s/<id>/api/scope`. */
export interface ScopeAnswer {
  id: string;
  title: string;
  object: string | null;
}

/**
 * `POST /api/scope` of each scope's app, reached as `POST /s/<id>/api/scope`: the scope's
 * display name and its target (as `POST /api/target`).
 */
@ApiTags('scopes')
@ApiBearerAuth()
@Controller('api')
@UseGuards(ControlGuard)
export class ScopeController {
  constructor(
    private readonly notifier: ImageNotifier,
    private readonly scope: ScopeTitle,
  ) {}

  @Post('scope')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Set the scope\'s title and object',
    description: `JSON \`{"title": "Dobson 300", "object": "M 42"}\` (either; null clears): title ${TITLE_RULE}, object ${OBJECT_NAME_RULE}. Reached as POST /s/<id>/api/scope.`,
  })
  @ApiResponse({ status: 200, description: '`{"id", "title", "object"}`' })
  @ApiResponse({ status: 400, description: 'Neither title nor object, or one breaks its rule' })
  async set(@Body() body: unknown): Promise<ScopeAnswer> {
    const given = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
    const hasTitle = 'title' in given;
    const hasObject = 'object' in given;
    if (!hasTitle && !hasObject) {
      throw new BadRequestException('the body must be JSON {"title": "...", "object": "..."} with either or both');
    }
    const title = given.title === null ? null : scopeTitle(given.title);
    if (hasTitle && title === undefined) {
      throw new BadRequestException(`title must be ${TITLE_RULE}, or null; got ${(JSON.stringify(given.title) ?? '').slice(0, 120)}`);
    }
    const object = given.object === null ? null : objectName(given.object);
    if (hasObject && object === undefined) {
      throw new BadRequestException(`object must be ${OBJECT_NAME_RULE}, or null; got ${(JSON.stringify(given.object) ?? '').slice(0, 120)}`);
    }
    if (hasTitle && title !== undefined) {
      await this.scope.set(title);
    }
    if (hasObject && object !== undefined) {
      await this.notifier.setTarget(object);
    }
    return { id: this.scope.scope, title: this.scope.title, object: this.notifier.currentTarget };
  }
}
