import type { Member } from "../../core/member.js";
import type { Clock, MemberPage, MemberSource } from "../../core/ports.js";
import type { PaymentHubClient, PaymentHubLogger } from "./create-paymenthub-client.js";
import { mapMember, type MappedMember } from "./map-member.js";
import type { WireMember } from "./paymenthub-schemas.js";

export interface PaymentHubMemberSourceOptions {
  readonly client: PaymentHubClient;
  readonly clock: Clock;
  /** Default `paymenthub`. */
  readonly name?: string;
  /** Members per listing page, 1 to 100. Default 100: the fewest requests for a full sweep. */
  readonly pageSize?: number;
  /** The daemon's own `status_since` for a member; default: the fetch time. */
  readonly statusSince?: (wire: WireMember, observedAt: number) => number;
  /** Where identity conflicts and problems are reported. */
  readonly logger?: Pick<PaymentHubLogger, "warn">;
}

/** The core {@link MemberSource} port over a {@link PaymentHubClient}. */
export function createPaymentHubMemberSource(options: PaymentHubMemberSourceOptions): MemberSource {
  const name = options.name ?? "paymenthub";
  const pageSize = options.pageSize ?? 100;

  function toMember(wire: WireMember, observedAt: number): Member {
    const mapped: MappedMember = mapMember(wire, {
      source: name,
      observedAt,
      statusSince: options.statusSince ? options.statusSince(wire, observedAt) : observedAt,
    });
    if (mapped.conflicts.length > 0 || mapped.problems.length > 0) {
      options.logger?.warn({ member: wire.id, conflicts: mapped.conflicts, problems: mapped.problems }, "PaymentHub member metadata needs attention");
    }
    return mapped.member;
  }

  return {
    name,
    async getMember(id) {
      const wire = await options.client.getMember(id, { priority: "webhook" });
      return wire === null ? null : toMember(wire, options.clock.now());
    },
    async listMembers(page): Promise<MemberPage> {
      const list = await options.client.listMembers({ page, limit: pageSize }, { priority: "poll" });
      const observedAt = options.clock.now();
      return {
        members: list.members.map((wire) => toMember(wire, observedAt)),
        page: list.pagination.page,
        totalPages: list.pagination.total_pages,
        total: list.pagination.total,
      };
    },
  };
}
