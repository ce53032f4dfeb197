import { Arg, Authorized, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { GenerationService } from './generation.service';
import { asPayload } from '../../platform/user-errors';
import type { GraphQLContext } from '../projects/graphql-context';
import { Role } from '../projects/role';
import { StartRunPayload } from '../runs/runs.resolver';
import { StartGenerationRunInput } from './generation.inputs';
import { PromptTemplate } from '../llm-tasks/prompt-template.entity';

@Resolver()
export class GenerationResolver {
  constructor(private readonly generationService: GenerationService) {}

  @Authorized(Role.CURATOR)
  @Mutation(() => StartRunPayload, { description: 'GPT-4V writes candidate conversations for the selected images, guided by clinician demonstrations. LLM_UNAVAILABLE when no model is configured.' })
  async startGenerationRun(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: StartGenerationRunInput): Promise<StartRunPayload> {
    return asPayload(async () => ({ run: await this.generationService.startRun(ctx, input) }));
  }

  @Query(() => [PromptTemplate], { description: 'The versioned prompt templates candidates and ratings were made with.' })
  async promptTemplates(): Promise<PromptTemplate[]> {
    return this.generationService.templates();
  }
}
