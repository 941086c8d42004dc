import { BadRequestException, Body, Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { objectName, OBJECT_NAME_RULE } from '../../common/image-details.js';
import { ControlGuard } from '../../shared/control-guard/control.guard.js';
import { ImageNotifier } from './image-notifier.service.js';
import { TargetDto } from './publish-query.dto.js';

/** `POST /api/target`: what the telescope points at, for images that do not say it themselves. */
@ApiTags('control')
@ApiBearerAuth()
@Controller('api')
@UseGuards(ControlGuard)
export class TargetController {
  constructor(private readonly notifier: ImageNotifier) {}

  @Post('target')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Set the target',
    description: 'JSON `{"object": "M 42"}`: the OBJECT of images that name none (no ?object=, no FITS OBJECT card, no N.I.N.A. file name); `null` clears it.',
  })
  @ApiBody({ type: TargetDto })
  @ApiResponse({ status: 200, description: '`{"object": ...}`' })
  @ApiResponse({ status: 400, description: `object is not ${OBJECT_NAME_RULE} or null` })
  @ApiResponse({ status: 401, description: 'No or wrong bearer token (a token is configured)' })
  @ApiResponse({ status: 403, description: 'Not from loopback (no token configured)' })
  async setTarget(@Body() body: unknown): Promise<{ object: string | null }> {
    const given = typeof body === 'object' && body !== null && 'object' in body ? (body).object : undefined;
    const object = given === null ? null : objectName(given);
    if (object === undefined) {
      throw new BadRequestException(`the body must be JSON {"object": "<name>"} with ${OBJECT_NAME_RULE}, or {"object": null}; got ${(JSON.stringify(given) ?? 'no object').slice(0, 120)}`);
    }
    await this.notifier.setTarget(object);
    return { object };
  }
}
