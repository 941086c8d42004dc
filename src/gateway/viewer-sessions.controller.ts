import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  NotFoundException,
  Param,
  Post,
  UseGuards,
  ValidationPipe,
} from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProperty, ApiResponse, ApiTags } from '@nestjs/swagger';
import { IsString, Length, ValidateBy } from 'class-validator';
import { noticeTextProblem } from './notice-text.js';
import { ControlGuard } from '../shared/control-guard/control.guard.js';
import { ViewerSessions, type ViewerInfo } from './viewer-sessions.service.js';

/** Longest operator notice, in characters. */
export const MAX_NOTICE_LENGTH = 500;

/** Body of `POST /api/messages` and `POST /api/clients/:id/messages`. */
export class NoticeDto {
  @ApiProperty({ minLength: 1, maxLength: MAX_NOTICE_LENGTH, example: 'Clouds coming: stacking paused' })
  @IsString({ message: 'text must be a string' })
  @Length(1, MAX_NOTICE_LENGTH, { message: `text must be 1 to ${MAX_NOTICE_LENGTH} characters long` })
  @ValidateBy({
    name: 'noticeText',
    validator: {
      validate: (value: unknown) => typeof value !== 'string' || noticeTextProblem(value) === undefined,
      defaultMessage: (args) => noticeTextProblem(String(args?.value)) ?? 'text is invalid',
    },
  })
  text!: string;
}

// Unknown fields are refused, so a typo ("txt") is a 400 rather than a silent default.
const noticeBody = new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true });

/** The operator's view of the viewers: list them, send them notices, drop one. */
@ApiTags('viewers')
@ApiBearerAuth()
@ApiResponse({ status: 401, description: 'No or wrong bearer token (a token is configured)' })
@ApiResponse({ status: 403, description: 'Not from loopback (no token configured)' })
@Controller('api')
@UseGuards(ControlGuard)
export class ViewerSessionsController {
  constructor(private readonly sessions: ViewerSessions) {}

  @Get('clients')
  @ApiOperation({ summary: 'The connected viewers, oldest first' })
  @ApiResponse({ status: 200, description: '`{clients: [{id, address, userAgent, connectedAt}]}`' })
  clients(): { clients: ViewerInfo[] } {
    return { clients: this.sessions.list() };
  }

  @Post('messages')
  @ApiOperation({ summary: 'A notice to every viewer' })
  @ApiResponse({ status: 200, description: '`{sent}`: how many viewers it went to' })
  @ApiResponse({ status: 400, description: 'No text, an empty or too long one, or an unknown field' })
  @HttpCode(200)
  noticeToAll(@Body(noticeBody) body: NoticeDto): { sent: number } {
    return { sent: this.sessions.broadcast({ type: 'notice', text: body.text }) };
  }

  @Post('clients/:id/messages')
  @ApiOperation({ summary: 'A notice to one viewer' })
  @ApiResponse({ status: 200, description: '`{sent}`: 1, or 0 if its socket was closing' })
  @ApiResponse({ status: 400, description: 'No text, an empty or too long one, or an unknown field' })
  @ApiResponse({ status: 404, description: 'No viewer with this id is connected' })
  @HttpCode(200)
  noticeToOne(@Param('id') id: string, @Body(noticeBody) body: NoticeDto): { sent: number } {
    this.known(id);
    return { sent: this.sessions.send(id, { type: 'notice', text: body.text }) ? 1 : 0 };
  }

  @Delete('clients/:id')
  @ApiOperation({ summary: 'Disconnect one viewer' })
  @ApiResponse({ status: 200, description: '`{disconnected: id}`' })
  @ApiResponse({ status: 404, description: 'No viewer with this id is connected' })
  @HttpCode(200)
  drop(@Param('id') id: string): { disconnected: string } {
    if (!this.sessions.disconnect(id)) {
      throw new NotFoundException(`no viewer with id "${id}" is connected`);
    }
    return { disconnected: id };
  }

  private known(id: string): void {
    if (!this.sessions.has(id)) {
      throw new NotFoundException(`no viewer with id "${id}" is connected`);
    }
  }
}
