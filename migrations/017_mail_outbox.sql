-- Outgoing mail (issue 11: password reset). SQL queues a message in the same transaction as the change
-- that needs it (internal.queue_mail), and a delivery worker (src/referral_service/mailer.py) sends it over
-- SMTP: it claims due messages with a lease, sends, and marks each sent or to be retried with backoff.
-- Delivery is at least once: a worker that dies between the SMTP send and the mark sends that message again
-- once its lease runs out; a worker that stops normally releases what it had claimed and sent nothing twice.

-- The worker's rights: only the delivery functions below (no table). It logs in as any role that is a
-- member of mailer and switches to it for its whole session (SET ROLE mailer).
do $$
begin
    if not exists (select from pg_roles where rolname = 'mailer') then
        create role mailer nologin;
    end if;
end
$$;
comment on role mailer is 'Mail delivery worker: may claim and mark outbox messages through functions, nothing else.';
grant usage on schema internal to mailer;

create table internal.mail_outbox (
    id              bigint generated always as identity primary key,
    kind            text not null check (kind ~ '^[a-z][a-z0-9_]{0,39}$'),
    -- one address, no line breaks: it becomes an SMTP envelope recipient and a To: header
    recipient       text not null check (recipient ~ '^[^@\s<>,;"]+@[^@\s<>,;"]+$' and length(recipient) <= 254),
    subject         text not null check (subject !~ '[\x01-\x1f\x7f]' and length(subject) between 1 and 200),
    body            text not null check (length(body) between 1 and 100000),
    created_at      timestamptz not null default now(),
    attempts        integer not null default 0 check (attempts >= 0),
    next_attempt_at timestamptz not null default now(),
    claim           uuid,         -- the current claim of a worker; null when nobody holds the message
    leased_until    timestamptz,  -- the claim's lease: past it, another worker may take the message again
    sent_at         timestamptz,
    failed_at       timestamptz,  -- gave up: a permanent SMTP refusal, or max_attempts reached
    last_error      text,
    check (sent_at is null or failed_at is null)
);
comment on table internal.mail_outbox is
    'Outgoing mail, kept until delivered (then purged after the retention period). Bodies may hold reset links: no API role may read it.';
comment on column internal.mail_outbox.kind is 'What the message is for, e.g. password_reset (for operators and metrics).';
comment on column internal.mail_outbox.attempts is 'Delivery attempts begun (counted when claimed, so a crash counts too).';
comment on column internal.mail_outbox.claim is 'Claim of the worker sending it now (internal.mail_claim); null otherwise.';
comment on column internal.mail_outbox.leased_until is 'Until when the claim holds; a crashed worker''s message is retried after it.';
comment on column internal.mail_outbox.failed_at is 'When delivery was given up (see last_error); internal.mail_requeue sends it again.';
alter table internal.mail_outbox enable row level security;  -- no policy and no grant: definer functions only
revoke all on internal.mail_outbox from public;

-- What the worker looks for: undelivered messages by due time (the sent ones are most of the table).
create index mail_outbox_due on internal.mail_outbox (next_attempt_at, id) where sent_at is null and failed_at is null;
create index mail_outbox_sent on internal.mail_outbox (sent_at) where sent_at is not null;

insert into internal.settings (name, value)
values ('mail_delivery', '{"max_attempts": 8, "backoff_base_seconds": 30, "backoff_cap_seconds": 3600,
                           "lease_seconds": 120, "sent_retention_days": 7, "failed_retention_days": 30}')
on conflict (name) do nothing;

-- One setting of mail_delivery as a number (the defaults above when an operator removed it).
create function internal.mail_setting(name text) returns double precision
language sql stable
set search_path = pg_catalog, internal
as $$
    select coalesce((select (value ->> mail_setting.name)::double precision from internal.settings
                     where settings.name = 'mail_delivery'),
                    ('{"max_attempts": 8, "backoff_base_seconds": 30, "backoff_cap_seconds": 3600, "lease_seconds": 120,
                       "sent_retention_days": 7, "failed_retention_days": 30}'::jsonb ->> mail_setting.name)::double precision)
$$;
comment on function internal.mail_setting(text) is 'A number of the mail_delivery setting, or its default.';
revoke execute on function internal.mail_setting(text) from public;

-- Operators tune delivery with e.g. `select internal.set_mail_delivery('{"max_attempts": 5}')`.
create function internal.set_mail_delivery(changes jsonb) returns jsonb
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    known constant text[] := array['max_attempts', 'backoff_base_seconds', 'backoff_cap_seconds', 'lease_seconds',
                                   'sent_retention_days', 'failed_retention_days'];
    key text;
    merged jsonb;
begin
    if jsonb_typeof(changes) is distinct from 'object' then
        raise exception using errcode = '22023', message = 'mail_delivery changes must be a JSON object';
    end if;
    for key in select jsonb_object_keys(changes) loop
        if not key = any(known) then
            raise exception using errcode = '22023', message = format('unknown mail_delivery setting %L', key),
                hint = 'known: ' || array_to_string(known, ', ');
        end if;
        if jsonb_typeof(changes -> key) <> 'number' or (changes ->> key)::numeric <= 0 then
            raise exception using errcode = '22023', message = format('mail_delivery %s must be a positive number', key);
        end if;
    end loop;
    update internal.settings set value = value || changes where name = 'mail_delivery' returning value into merged;
    if merged is null then
        insert into internal.settings (name, value) values ('mail_delivery', changes) returning value into merged;
    end if;
    return merged;
end
$$;
comment on function internal.set_mail_delivery(jsonb) is 'Change mail delivery settings (attempts, backoff, lease, retention).';
revoke execute on function internal.set_mail_delivery(jsonb) from public;

-- Queue one message; the caller's transaction decides whether it is ever sent (rolled back: never queued).
-- SECURITY DEFINER so that the definer functions of other features (password reset) can queue without any
-- right on the table; no API role may call it (an API caller could send mail to anyone).
create function internal.queue_mail(recipient text, subject text, body text, kind text) returns bigint
language plpgsql security definer
set search_path = pg_catalog, internal
as $$
declare
    new_id bigint;
begin
    if recipient is null or recipient !~ '^[^@\s<>,;"]+@[^@\s<>,;"]+$' or length(recipient) > 254 then
        raise exception using errcode = '22023', message = 'mail recipient must be one plain address (user@host)';
    end if;
    if subject is null or subject ~ '[\x01-\x1f\x7f]' or length(subject) not between 1 and 200 then
        raise exception using errcode = '22023', message = 'mail subject must be 1-200 characters without control characters';
    end if;
    if body is null or length(body) not between 1 and 100000 then
        raise exception using errcode = '22023', message = 'mail body must be 1-100000 characters';
    end if;
    if kind is null or kind !~ '^[a-z][a-z0-9_]{0,39}$' then
        raise exception using errcode = '22023', message = 'mail kind must be a lower-case word such as password_reset';
    end if;
    insert into internal.mail_outbox (recipient, subject, body, kind)
    values (queue_mail.recipient, queue_mail.subject, queue_mail.body, queue_mail.kind)
    returning id into new_id;
    perform pg_notify('mail_outbox', '');  -- delivered at commit: wakes the worker without waiting for its poll
    return new_id;
end
$$;
comment on function internal.queue_mail(text, text, text, text) is
    'Queue a plain-text message for the delivery worker; returns its outbox id. For definer functions only.';
revoke execute on function internal.queue_mail(text, text, text, text) from public;

-- The worker takes up to `batch` due messages: FOR UPDATE SKIP LOCKED so workers never wait for or take each
-- other's rows, a lease so that the message of a worker that died is taken again once the lease is past.
create function internal.mail_claim(batch integer default 10)
returns table (id bigint, recipient text, subject text, body text, kind text, attempt integer, claim uuid,
               created_at timestamptz)
language plpgsql security definer
set search_path = pg_catalog, internal, public
as $$
declare
    max_attempts constant double precision := internal.mail_setting('max_attempts');
    lease constant interval := make_interval(secs => internal.mail_setting('lease_seconds'));
begin
    -- a lease that ran out on the last allowed attempt: give up rather than try once more
    update internal.mail_outbox o
    set failed_at = now(), claim = null, leased_until = null,
        last_error = format('no result from attempt %s before its lease ran out (worker stopped or died)', o.attempts)
    where o.sent_at is null and o.failed_at is null and o.leased_until <= now() and o.attempts >= max_attempts;

    return query
    with due as (
        select d.id from internal.mail_outbox d
        where d.sent_at is null and d.failed_at is null and d.next_attempt_at <= now()
          and (d.leased_until is null or d.leased_until <= now())
        order by d.next_attempt_at, d.id
        limit least(greatest(coalesce(batch, 10), 1), 100)
        for update skip locked
    )
    update internal.mail_outbox o
    set attempts = o.attempts + 1, claim = gen_random_uuid(), leased_until = now() + lease
    from due where o.id = due.id
    returning o.id, o.recipient, o.subject, o.body, o.kind, o.attempts, o.claim, o.created_at;
end
$$;
comment on function internal.mail_claim(integer) is
    'Delivery worker: claim up to batch due messages under a lease (lease_seconds) and count the attempt.';
revoke execute on function internal.mail_claim(integer) from public;

-- Sent: recorded even when the claim was lost meanwhile (it is the truth, and stops further sends).
create function internal.mail_sent(message_id bigint) returns boolean
language sql security definer
set search_path = pg_catalog, internal
as $$
    with done as (
        update internal.mail_outbox
        set sent_at = now(), failed_at = null, claim = null, leased_until = null, last_error = null
        where id = message_id and sent_at is null
        returning 1
    )
    select exists (select from done)
$$;
comment on function internal.mail_sent(bigint) is 'Delivery worker: the message was accepted by the SMTP server.';
revoke execute on function internal.mail_sent(bigint) from public;

-- Not sent: try again after an exponential backoff (base * 2^(attempts-1), capped), or give up when the
-- refusal was permanent or the attempts are used up. Only the holder of the claim may decide this.
-- Returns the message's state afterwards: 'queued', 'failed', or 'stale' (the claim is no longer held).
create function internal.mail_retry(message_id bigint, held_claim uuid, error text, permanent boolean default false)
returns text
language plpgsql security definer
set search_path = pg_catalog, internal
as $$
declare
    base constant double precision := internal.mail_setting('backoff_base_seconds');
    cap constant double precision := internal.mail_setting('backoff_cap_seconds');
    max_attempts constant double precision := internal.mail_setting('max_attempts');
    reason constant text := left(regexp_replace(coalesce(error, 'unknown error'), '[\x01-\x1f\x7f]+', ' ', 'g'), 500);
    outcome text;
begin
    update internal.mail_outbox o
    set claim = null, leased_until = null, last_error = reason,
        failed_at = case when permanent or o.attempts >= max_attempts then now() end,
        next_attempt_at = now() + make_interval(secs => least(cap, base * power(2, greatest(o.attempts - 1, 0))))
    where o.id = message_id and o.claim = held_claim and o.sent_at is null and o.failed_at is null
    returning case when o.failed_at is null then 'queued' else 'failed' end into outcome;
    return coalesce(outcome, 'stale');
end
$$;
comment on function internal.mail_retry(bigint, uuid, text, boolean) is
    'Delivery worker: the send failed; back off and retry, or mark failed (permanent refusal or max_attempts).';
revoke execute on function internal.mail_retry(bigint, uuid, text, boolean) from public;

-- A worker that stops normally hands back what it claimed and did not try: due again at once, the attempt
-- not counted.
create function internal.mail_release(claims uuid[]) returns integer
language plpgsql security definer
set search_path = pg_catalog, internal
as $$
declare
    released integer;
begin
    update internal.mail_outbox
    set claim = null, leased_until = null, attempts = greatest(attempts - 1, 0)
    where claim = any(claims) and sent_at is null and failed_at is null;
    get diagnostics released = row_count;
    return released;
end
$$;
comment on function internal.mail_release(uuid[]) is 'Delivery worker: give back claimed messages it did not try (normal stop).';
revoke execute on function internal.mail_release(uuid[]) from public;

-- Seconds until the next message is due (0 when one is due now), null when nothing waits: the worker
-- sleeps that long unless a notification comes first.
create function internal.mail_next_due() returns double precision
language sql stable security definer
set search_path = pg_catalog, internal
as $$
    select greatest(0, extract(epoch from min(greatest(next_attempt_at, coalesce(leased_until, next_attempt_at))) - now()))
    from internal.mail_outbox where sent_at is null and failed_at is null
$$;
comment on function internal.mail_next_due() is 'Delivery worker: seconds until the next undelivered message is due, or null.';
revoke execute on function internal.mail_next_due() from public;

-- For operators (`referral-service mailer status`) and the worker's log: counts by state, no content.
create function internal.mail_status()
returns table (state text, messages bigint, oldest timestamptz)
language sql stable security definer
set search_path = pg_catalog, internal
as $$
    with states (state, ord) as (values ('queued', 1), ('retrying', 2), ('sending', 3), ('failed', 4), ('sent', 5)),
    classified as (
        select case when sent_at is not null then 'sent'
                    when failed_at is not null then 'failed'
                    when leased_until > now() then 'sending'
                    when attempts > 0 then 'retrying'
                    else 'queued' end as state,
               created_at
        from internal.mail_outbox
    )
    select s.state, count(c.state), min(c.created_at)
    from states s left join classified c on c.state = s.state
    group by s.state, s.ord order by s.ord
$$;
comment on function internal.mail_status() is
    'Outbox counts by state: queued, retrying (failed before, waiting for its backoff), sending (leased), failed, sent.';
revoke execute on function internal.mail_status() from public;

create function internal.mail_failures(max_rows integer default 20)
returns table (id bigint, kind text, recipient text, attempts integer, failed_at timestamptz, last_error text)
language sql stable
set search_path = pg_catalog, internal
as $$
    select id, kind, recipient, attempts, failed_at, last_error from internal.mail_outbox
    where failed_at is not null order by failed_at desc, id desc limit greatest(max_rows, 0)
$$;
comment on function internal.mail_failures(integer) is 'Operators: the most recent messages given up on, without their bodies.';
revoke execute on function internal.mail_failures(integer) from public;

-- Operators: send a failed message again (e.g. after fixing the SMTP settings); returns whether it was failed.
create function internal.mail_requeue(message_id bigint) returns boolean
language sql
set search_path = pg_catalog, internal
as $$
    with again as (
        update internal.mail_outbox
        set failed_at = null, attempts = 0, next_attempt_at = now(), last_error = null
        where id = message_id and failed_at is not null
        returning 1
    )
    select exists (select from again)
$$;
comment on function internal.mail_requeue(bigint) is 'Operators: queue a failed message again with its attempts reset.';
revoke execute on function internal.mail_requeue(bigint) from public;

grant execute on function internal.mail_claim(integer), internal.mail_sent(bigint),
    internal.mail_retry(bigint, uuid, text, boolean), internal.mail_release(uuid[]), internal.mail_next_due(),
    internal.mail_status() to mailer;

-- Retention: sent messages after sent_retention_days (their links expired long before), failed ones after
-- failed_retention_days (operators had that long to look); queued ones are never purged.
create function internal.purge_mail(as_of timestamptz) returns bigint
language plpgsql
set search_path = pg_catalog, internal
as $$
declare
    removed bigint;
begin
    delete from internal.mail_outbox
    where sent_at < as_of - make_interval(days => internal.mail_setting('sent_retention_days')::integer)
       or failed_at < as_of - make_interval(days => internal.mail_setting('failed_retention_days')::integer);
    get diagnostics removed = row_count;
    return removed;
end
$$;
comment on function internal.purge_mail(timestamptz) is 'Retention: delete sent and failed outbox messages older than their retention period.';
revoke execute on function internal.purge_mail(timestamptz) from public;

select cron.schedule('purge-sent-mail', '17 4 * * *', 'select internal.purge_mail(now())');
