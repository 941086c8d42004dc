import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsNumber, IsOptional, Max, Min, ValidateBy } from 'class-validator';
import { objectName, OBJECT_NAME_RULE } from '../../common/image-details.js';

/** A query value as a number only when it is written as plain digits; anything else fails the checks below. */
const digits =
  (pattern: RegExp) =>
  ({ value }: { value: unknown }): unknown =>
    typeof value === 'string' && pattern.test(value) ? Number(value) : value;

/** The query of `PUT /api/image`: absolute values of the stack now, not increments. */
export class PublishQueryDto {
  /** Number of frames in the stack now. */
  @ApiPropertyOptional({ type: 'integer', minimum: 0, description: 'Frames in the stack now (absolute, not an increment)' })
  @IsOptional()
  @Transform(digits(/^\d+$/))
  @IsInt({ message: 'stackSize must be an integer ≥ 0' })
  @Min(0, { message: 'stackSize must be an integer ≥ 0' })
  @Max(Number.MAX_SAFE_INTEGER, { message: 'stackSize must be an integer ≥ 0' })
  stackSize?: number;

  /** Total exposure of the stack now, in seconds. */
  @ApiPropertyOptional({ type: 'number', minimum: 0, description: 'Total exposure of the stack now, in seconds (absolute)' })
  @IsOptional()
  @Transform(digits(/^\d+(\.\d+)?$/))
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'exposure must be a number of seconds ≥ 0' })
  @Min(0, { message: 'exposure must be a number of seconds ≥ 0' })
  exposure?: number;

  /** The target the image shows; wins over a FITS `OBJECT` card and the target set with POST /api/target. */
  @ApiPropertyOptional({ type: 'string', minLength: 1, maxLength: 100, description: 'The object the image shows (e.g. M 42); wins over the FITS OBJECT card and POST /api/target' })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) => objectName(value) ?? value)
  @ValidateBy({ name: 'objectName', validator: { validate: (value: unknown) => objectName(value) === value } }, { message: `object must be ${OBJECT_NAME_RULE}` })
  object?: string;
}

/** The body of `POST /api/target`. */
export class TargetDto {
  @ApiProperty({ type: 'string', nullable: true, minLength: 1, maxLength: 100, description: 'The object the telescope points at; null clears it' })
  object!: string | null;
}

/** The answer of `PUT /api/image`. */
export class PublishedDto {
  @ApiProperty({ enum: [true] })
  published!: true;

  @ApiProperty({ description: 'Bytes received' })
  bytes!: number;

  @ApiProperty({ description: 'STACK_SIZE now' })
  stackSize!: number;

  @ApiProperty({ description: 'Total exposure now, in seconds' })
  exposure!: number;
}
