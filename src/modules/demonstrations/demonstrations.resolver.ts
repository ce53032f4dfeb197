import { Arg, Args, Authorized, Ctx, Field, FieldResolver, Int, Mutation, ObjectType, Query, Resolver, Root } from 'type-graphql';
import type { AppConfig } from '../../platform/config';
import type { CandidatesService } from '../candidates/candidates.service';
import type { DemonstrationsService } from './demonstrations.service';
import type { RecordsImportService } from './records-import.service';
import type { ImagesService } from '../images/images.service';
import type { ProjectsService } from '../projects/projects.service';
import { badInput, DomainError, ErrorCode } from '../../platform/errors';
import { expectGlobalId } from '../../platform/ids';
import { ConnectionType, connectionOf, decodeCursor, PageArgs, toConnection } from '../../platform/pagination';
import { asPayload, UserError, UserErrorCode } from '../../platform/user-errors';
import { readUpload, UploadedFile } from '../../platform/uploads';
import type { GraphQLContext } from '../projects/graphql-context';
import { Role } from '../projects/role';
import { User } from '../projects/user.entity';
import { userByIdLoader } from '../projects/projects.loaders';
import { Run } from '../runs/run.entity';
import { Image } from '../images/image.entity';
import { imageByIdLoader } from '../images/images.loaders';
import { Candidate } from '../candidates/candidate.entity';
import { candidateByIdLoader } from '../candidates/candidates.loaders';
import { Demonstration } from './demonstration.entity';
import { demonstrationByIdLoader } from './demonstrations.loaders';
import { DemonstrationsArgs, ImportRecordsInput, SetDemonstrationActiveInput } from './demonstrations.inputs';

@ObjectType()
export class DemonstrationConnection extends ConnectionType(Demonstration, 'Demonstration') {}

@ObjectType({ description: 'A problem with one record of an import; with any of these, nothing was imported.' })
export class RecordError {
  @Field(() => Int) index: number;
  @Field(() => String, { nullable: true }) recordId: string | null;
  @Field(() => String, { nullable: true }) field: string | null;
  @Field() message: string;
  @Field(() => UserErrorCode, { nullable: true, description: 'For image failures: UNSUPPORTED_MEDIA, TOO_LARGE, or INVALID (URL refused, timed out, HTTP error).' }) code?: UserErrorCode | null;
}

@ObjectType()
export class ImportSummary {
  @Field(() => Int) imagesCreated: number;
  @Field(() => Int) imagesUpdated: number;
  @Field(() => Int) imagesWithBytes: number;
  @Field(() => Int) demonstrationsCreated: number;
  @Field(() => [String], { description: 'Uploaded files no record named.' }) unmatchedFiles: string[];
}

@ObjectType()
export class ImportRecordsPayload {
  @Field(() => ImportSummary, { nullable: true }) summary?: ImportSummary | null;
  @Field(() => [RecordError]) recordErrors: RecordError[];
  @Field(() => Run, {
    nullable: true,
    description:
      'The IMAGE_FETCH run fetching the images given by URL (null when none): follow it with runUpdated or run(id); each image it could not fetch is one of its failures, keyed `image:<image id>`, its reason naming the pair id and URL.',
  })
  fetchRun?: Run | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@ObjectType()
export class SetDemonstrationActivePayload {
  @Field(() => Demonstration, { nullable: true }) demonstration?: Demonstration | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badInput(`recordsFile is not valid JSON: ${(error as Error).message}`, 'recordsFile');
  }
}

@Resolver(() => Demonstration)
export class DemonstrationsResolver {
  constructor(
    private readonly demonstrationsService: DemonstrationsService,
    private readonly imagesService: ImagesService,
    private readonly projectsService: ProjectsService,
    private readonly candidatesService: CandidatesService,
    private readonly config: Pick<AppConfig, 'MAX_UPLOAD_BYTES'>,
    private readonly recordsImportService: RecordsImportService,
  ) {}

  @Query(() => DemonstrationConnection, { description: 'Clinician demonstrations used as few-shot examples.' })
  async demonstrations(@Ctx() { ctx }: GraphQLContext, @Args() args: DemonstrationsArgs): Promise<DemonstrationConnection> {
    return connectionOf(DemonstrationConnection, await this.demonstrationsService.list(ctx, args, args.filter));
  }

  @FieldResolver(() => Image)
  async image(@Root() demonstration: Demonstration, @Ctx() { ctx }: GraphQLContext): Promise<Image | null> {
    return imageByIdLoader(ctx, this.imagesService).load(demonstration.imageId);
  }

  @FieldResolver(() => User, { nullable: true })
  async selectedBy(@Root() demonstration: Demonstration, @Ctx() { ctx }: GraphQLContext): Promise<User | null> {
    return demonstration.selectedById ? userByIdLoader(ctx, this.projectsService).load(demonstration.selectedById) : null;
  }

  @FieldResolver(() => Candidate, { nullable: true, description: 'The generated candidate this demonstration was accepted from, if any.' })
  async sourceCandidate(@Root() demonstration: Demonstration, @Ctx() { ctx }: GraphQLContext): Promise<Candidate | null> {
    return demonstration.sourceCandidateId ? candidateByIdLoader(ctx, this.candidatesService).load(demonstration.sourceCandidateId) : null;
  }

  @Authorized(Role.CURATOR)
  @Mutation(() => ImportRecordsPayload, { description: 'Imports figure records and demonstrations; all or nothing.' })
  async importRecords(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: ImportRecordsInput): Promise<ImportRecordsPayload> {
    const result = await asPayload(async () => {
      const maxBytes = this.config.MAX_UPLOAD_BYTES;
      if ((input.records == null) === (input.recordsFile == null)) throw badInput('Give exactly one of records or recordsFile', 'records');
      const records = input.recordsFile ? parseJson((await readUpload(input.recordsFile, maxBytes, ['recordsFile'])).bytes.toString('utf8')) : input.records;
      const files: UploadedFile[] = [];
      for (const upload of input.images ?? []) files.push(await readUpload(upload, maxBytes, ['images']));
      const { recordErrors, fetchRun, ...summary } = await this.recordsImportService.import(ctx, records, files, { createDemonstrations: input.createDemonstrations });
      return { summary: recordErrors.length ? null : summary, recordErrors, fetchRun };
    });
    return { ...result, recordErrors: result.recordErrors ?? [] };
  }

  @Authorized(Role.CLINICIAN)
  @Mutation(() => SetDemonstrationActivePayload, { description: 'Selects or retires a demonstration for generation.' })
  async setDemonstrationActive(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: SetDemonstrationActiveInput): Promise<SetDemonstrationActivePayload> {
    return asPayload(async () => {
      const demonstration = await this.demonstrationsService.setActive(ctx, expectGlobalId(input.id, 'Demonstration'), input.active);
      if (!demonstration) throw new DomainError(ErrorCode.NOT_FOUND, 'Demonstration not found', 'id');
      return { demonstration };
    });
  }
}

/** The demonstrations a candidate was prompted with, in prompt order; here because candidates do not know demonstrations. */
@Resolver(() => Candidate)
export class CandidateDemonstrationsResolver {
  constructor(private readonly demonstrationsService: DemonstrationsService) {}

  @FieldResolver(() => DemonstrationConnection, { description: 'Demonstrations in the prompt that produced this candidate, in prompt order.' })
  async demonstrationsUsed(@Root() candidate: Candidate, @Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<DemonstrationConnection> {
    const start = page.after ? Number(decodeCursor(page.after, 'number').value) + 1 : 0;
    const ids = candidate.demonstrationIds.slice(start, start + page.first + 1);
    const found = await demonstrationByIdLoader(ctx, this.demonstrationsService).loadMany(ids);
    const rows = found.map((d, i) => ({ d, position: start + i })).filter((r): r is { d: Demonstration; position: number } => r.d instanceof Demonstration);
    const positions = new Map(rows.map((r) => [r.d, r.position]));
    const shape = toConnection(
      rows.map((r) => r.d),
      page,
      (d) => ({ value: positions.get(d)!, id: d.id }),
      async () => candidate.demonstrationIds.length,
    );
    return connectionOf(DemonstrationConnection, shape);
  }
}
